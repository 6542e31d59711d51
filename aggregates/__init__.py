"""The pure civfed domain: aggregates, rules and their guards."""
