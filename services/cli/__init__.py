"""`civfed`: the command line. Nothing else in the project imports it."""

from services.cli.main import main

__all__ = ["main"]
