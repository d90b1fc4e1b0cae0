"""The ``forum`` commands: every module here is imported by :mod:`clients.cli` and registers on its app.

Add a command by adding a module (names starting with ``_`` are skipped).
"""
