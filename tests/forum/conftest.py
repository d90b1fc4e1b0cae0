from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from forum.server import full_app
from forum.settings import Settings


def make_settings(tmp_path: Path, database_url: str, **over: object) -> Settings:
    """Test settings: rate limits off unless a test turns them on."""
    # verify_workers 0: in-process apps check events in one thread (the same code the
    # worker processes run; the real-socket tests run the processes).
    values: dict[str, object] = {"author_rate": 0, "address_rate": 0, "verify_workers": 0, **over}
    return Settings(data_dir=tmp_path, database_url=database_url, **values)  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    """The whole app as served (public web included, lifespan included), on SQLite and on PostgreSQL."""
    with TestClient(full_app(make_settings(tmp_path, database_url))) as c:
        yield c
