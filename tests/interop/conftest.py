"""Fixtures of the interoperability tests: one real forum process per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.server import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("interop-forum"))
    try:
        yield srv
    finally:
        stop_server(srv)
