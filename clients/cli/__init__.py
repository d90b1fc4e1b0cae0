"""The ``forum`` command line."""

from clients.cli.app import app, main

__all__ = ["app", "main"]
