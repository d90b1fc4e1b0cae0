"""Mycelium forum server: protocol core, storage, ingest, fan-out, HTTP and WebSocket APIs."""

__version__ = "0.1.0"
