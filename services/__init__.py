"""Applications, adapters and the command line."""
