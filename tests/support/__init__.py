"""Shared test-support code (PostgreSQL server, timeouts, Chromium).

Import it as ``tests.support.<module>``; ``tests/conftest.py`` makes the
repository root importable so this works however pytest is started.
"""
