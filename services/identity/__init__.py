"""Who is calling: staff from the city's identity provider, holders and tills by their own
credentials, partner cities by their certificates; and what each may do."""
