"""The dashboard HTTP service: a JSON API and one page per city and for the federation."""
