"""Suite-wide fixtures: databases.  Feature fixtures live in subdirectory conftests.

``postgres_server`` (session)
    The PostgreSQL server (``clients.launch.PostgresServer``), started on
    first use and stopped at the end of the session; or the server named by
    ``MYCELIUM_TEST_POSTGRES_URL``.
``postgres_url``
    A fresh, empty database on that server for one test, dropped afterwards:
    ``postgresql+asyncpg://postgres@127.0.0.1:PORT/t_<test>_<hex>``.
``database_url``
    Parametrized ``[sqlite]`` / ``[postgres]``: ``sqlite+aiosqlite:///<tmp_path>/forum.db``
    or a ``postgres_url``.  The postgres case carries the ``postgres`` marker.

Tests that use ``postgres_server`` or ``postgres_url`` are marked ``postgres``
automatically, so ``-m "not postgres"`` never starts PostgreSQL.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # make `tests.support` importable under plain `pytest`
    sys.path.insert(0, str(ROOT))

from clients.launch import PostgresServer  # noqa: E402

URL_ENV = "MYCELIUM_TEST_POSTGRES_URL"
"""A server you already run, instead of a throwaway one (its user needs CREATEDB)."""
BINDIR_ENV = "MYCELIUM_TEST_POSTGRES_BINDIR"
"""Directory with initdb/pg_ctl when auto-detection does not find it."""
POSTGRES_HINT = (
    "Run the suite with scripts/test (it installs PostgreSQL), set "
    f"{URL_ENV} to a server you run, or deselect these tests with -m 'not postgres'."
)
POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_url"})


@pytest.hookimpl(tryfirst=True)  # before -m deselection runs
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            if item.get_closest_marker("postgres") is None:
                item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = os.environ.get(BINDIR_ENV)
    server = PostgresServer(
        external_url=os.environ.get(URL_ENV) or None,
        bindir=Path(bindir) if bindir else None,
        hint=POSTGRES_HINT,
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:48]
    name = f"t_{slug}_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgres"],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/forum.db"
    return str(request.getfixturevalue("postgres_url"))
