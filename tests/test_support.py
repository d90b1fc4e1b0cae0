"""Tests of the test-support code itself (tests/support, tests/conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from clients.launch import ForumProcess, LaunchError, PostgresServer
from tests.support import chromium, timeouts


async def test_postgres_server_accepts_queries(postgres_server: PostgresServer) -> None:
    assert postgres_server.url.startswith("postgresql+asyncpg://")
    conn = await asyncpg.connect(postgres_server.dsn, timeout=timeouts.timeout(10))
    try:
        version = await conn.fetchval("SELECT version()")
        encoding = await conn.fetchval("SHOW server_encoding")
    finally:
        await conn.close()
    assert version.startswith("PostgreSQL ")
    assert encoding == "UTF8"


async def test_create_and_drop_database(postgres_server: PostgresServer) -> None:
    # Two databases on the server do not see each other's tables; drop removes them.
    first = postgres_server.create_database("t_support_isolation_a")
    second = postgres_server.create_database("t_support_isolation_b")
    try:
        dsn_a = first.replace("postgresql+asyncpg://", "postgresql://")
        dsn_b = second.replace("postgresql+asyncpg://", "postgresql://")
        a = await asyncpg.connect(dsn_a, timeout=timeouts.timeout(10))
        b = await asyncpg.connect(dsn_b, timeout=timeouts.timeout(10))
        try:
            await a.execute("CREATE TABLE notes (body text)")
            await a.execute("INSERT INTO notes VALUES ('only in a')")
            assert await a.fetchval("SELECT count(*) FROM notes") == 1
            assert await b.fetchval("SELECT to_regclass('notes')") is None
        finally:
            await a.close()
            await b.close()
    finally:
        postgres_server.drop_database("t_support_isolation_a")
        postgres_server.drop_database("t_support_isolation_b")
    assert (
        postgres_server.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 't_support_isolation_%'"
        )
        == 0
    )


_postgres_url_databases: list[str] = []


@pytest.mark.parametrize("run", ["first", "second"])
async def test_postgres_url_is_fresh_and_isolated(
    run: str, postgres_url: str, postgres_server: PostgresServer
) -> None:
    dbname = postgres_url.rsplit("/", 1)[1]
    assert dbname.startswith("t_test_postgres_url_is_fresh")  # named after the test
    conn = await asyncpg.connect(postgres_server.dsn_for(dbname), timeout=timeouts.timeout(10))
    try:
        # The other run created this table in its own database; it is not here.
        assert await conn.fetchval("SELECT to_regclass('notes')") is None
        await conn.execute("CREATE TABLE notes (body text)")
    finally:
        await conn.close()
    # Databases of earlier tests were dropped when those tests ended.
    for earlier in _postgres_url_databases:
        assert earlier != dbname
        assert (
            postgres_server.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", earlier)
            == 0
        )
    _postgres_url_databases.append(dbname)


async def test_database_url(database_url: str, request: pytest.FixtureRequest) -> None:
    if database_url.startswith("sqlite"):
        assert request.node.get_closest_marker("postgres") is None
        path = database_url.removeprefix("sqlite+aiosqlite:///")
        async with aiosqlite.connect(path) as db:
            await db.execute("CREATE TABLE t (x integer)")
            await db.execute("INSERT INTO t VALUES (42)")
            await db.commit()
            async with db.execute("SELECT x FROM t") as cursor:
                assert await cursor.fetchone() == (42,)
    else:
        assert request.node.get_closest_marker("postgres") is not None
        assert database_url.startswith("postgresql+asyncpg://postgres")
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn, timeout=timeouts.timeout(10))
        try:
            assert await conn.fetchval("SELECT 42") == 42
        finally:
            await conn.close()


def test_timeout_unit_scales() -> None:
    assert timeouts.UNIT > 0
    assert timeouts.timeout(3) == pytest.approx(3 * timeouts.UNIT)
    assert timeouts.timeout() == timeouts.UNIT


def test_chromium_launch_args() -> None:
    args = chromium.chromium_args()
    assert "--no-sandbox" in args and "--headless" in args
    args.append("--mutated")
    assert "--mutated" not in chromium.CHROMIUM_ARGS
    assert chromium.screenshot_dir().is_dir()


def test_chromium_runs() -> None:
    path = chromium.chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (scripts/test installs it)")
    result = subprocess.run(
        [path, *chromium.CHROMIUM_ARGS, "--version"],
        capture_output=True,
        text=True,
        timeout=timeouts.timeout(30),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Chromium" in result.stdout


# --------------------------------------------------------------------------- clients/launch.py


def test_the_launcher_passes_settings_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    forum = ForumProcess(
        tmp_path / "forum", settings={"FORUM_NAME": "Launch test", "author_rate": 0}, time_unit=timeouts.UNIT
    )
    assert forum.env["FORUM_NAME"] == "Launch test" and forum.env["FORUM_PORT"] == "0"
    with forum:
        assert forum.get_json("/.well-known/mycelium.json")["name"] == "Launch test"
        port = forum.port
        assert port and forum.ws_url == f"ws://127.0.0.1:{port}/ws"
        forum.kill()
        assert forum.proc is not None and forum.proc.poll() is not None
        forum.start()  # the same port and data again
        assert forum.port == port and forum.get_json("/healthz")["head_seq"] == 0


def test_a_forum_that_cannot_start_raises_with_its_output(tmp_path: Path) -> None:
    forum = ForumProcess(tmp_path, settings={"max_frame_bytes": 1}, time_unit=timeouts.UNIT)
    with pytest.raises(LaunchError, match="did not start") as info:
        forum.start(30)
    assert "max_frame_bytes" in str(info.value)
    assert forum.proc is not None and forum.proc.poll() is not None
