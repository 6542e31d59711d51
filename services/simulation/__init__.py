"""A seeded fault simulation of the federation (`civfed simulate`).

Nothing in production imports this package; only the command line and the tests do.
"""
