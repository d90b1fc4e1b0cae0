"""Full-text search (forum/search.py) on both databases: the page /search and GET /api/v1/search.

Real SQLite FTS5 (migration 0003) and real PostgreSQL full-text search over stored vectors (0004), real signed
events published through the HTTP API. What a person types is never a syntax error."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event as sa_event
from sqlalchemy import text
from starlette.testclient import TestClient

from feeds.site import create_app
from forum import search as search_module
from forum.db import MIGRATIONS
from forum.db import create_engine as create_async_engine
from tests.feeds.conftest import Publish, publish_with, settings
from tests.feeds.helpers import Agent, outcome_body, proposal_body

HOSTILE = ['"', "*", "NEAR(a b)", "a OR b", "-x", "title:foo", "'); DROP TABLE events; --", "(((", "^", "\x00", "🍄", "&amp;"]


def seed(publish: Publish) -> dict[str, Any]:
    alice, bob, elm = Agent("search-alice"), Agent("search-bob"), Agent("search-elm")
    publish(elm.envelope("community", {"name": "Elm Street", "about": "Forty houses.", "place": "Testville"}))
    tools = publish(alice.envelope("proposal", proposal_body("Tool library", text="Lend drills and ladders from the shed.", tags=["commons"])))
    buses = publish(bob.envelope("proposal", proposal_body("Night buses", text="Run buses after midnight on Fridays.", tags=["transport"])))
    gone = publish(bob.envelope("proposal", proposal_body("Withdrawn zeppelin idea", text="Zeppelins everywhere.")))
    publish(bob.envelope("retraction", {"target": gone, "reason": "Changed my mind."}))
    reply = publish(bob.envelope("reply", {"target": tools, "stance": "question", "text": "Who repairs the broken drills?"}))
    report = publish(elm.envelope("outcome", {**outcome_body(tools), "summary": "Ladders were the most borrowed item."}))
    return {"tools": tools, "buses": buses, "gone": gone, "reply": reply, "report": report}


def api_ids(c: TestClient, query: str) -> list[str]:
    r = c.get(f"/api/v1/search?{query}")
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["results"]]


def check_search(c: TestClient, w: dict[str, Any]) -> None:
    # A word of the text, another form of it (stemming), any case.
    assert set(api_ids(c, "q=ladders")) == {w["tools"], w["report"]}
    assert api_ids(c, "q=libraries") == [w["tools"]]
    assert api_ids(c, "q=MIDNIGHT") == [w["buses"]]
    assert set(api_ids(c, "q=drills")) == {w["tools"], w["reply"]}
    # Every word must match; kind and tag filter; retracted posts never appear.
    assert api_ids(c, "q=drills+repairs") == [w["reply"]]
    assert api_ids(c, "q=drills&kind=reply") == [w["reply"]]
    assert api_ids(c, "q=ladders&kind=outcome") == [w["report"]]
    assert api_ids(c, "q=buses&tag=transport") == [w["buses"]] and api_ids(c, "q=buses&tag=commons") == []
    assert api_ids(c, "q=zeppelin") == []
    assert api_ids(c, "q=") == []
    # Paging: one a page, then the next.
    first = c.get("/api/v1/search?q=ladders&limit=1&sort=new").json()
    assert first["next_offset"] == 1 and [x["id"] for x in first["results"]] == [w["report"]]
    second = c.get("/api/v1/search?q=ladders&limit=1&offset=1&sort=new").json()
    assert [x["id"] for x in second["results"]] == [w["tools"]] and second["next_offset"] is None
    # Nothing typed is an error; bad parameters are, with a reason.
    for q in HOSTILE:
        r = c.get("/api/v1/search", params={"q": q})
        assert r.status_code == 200, (q, r.text)
        assert c.get("/search", params={"q": q}).status_code == 200
    for bad in ("kind=rating", "limit=0", "limit=101", "offset=5000", "sort=best", "tag=Not%20A%20Tag", "colour=red", "q=" + "x" * 501):
        r = c.get(f"/api/v1/search?{bad}")
        assert r.status_code == 400 and r.json()["reason"] == "invalid", bad
    # The page: the proposal found by a word of its text, as a card with its link.
    page = c.get("/search?q=shed").text
    assert f'id="e-{w["tools"]}"' in page and "Tool library" in page
    assert "No post contains" in c.get("/search?q=zeppelin").text
    assert c.get("/search?q=drills&kind=rating").status_code == 200  # a bad filter on the page: said, not a 400


def test_search_on_sqlite(client: TestClient, publish: Publish) -> None:
    check_search(client, seed(publish))


def test_existing_log_is_indexed_by_the_migration(tmp_path: Path) -> None:
    """Migration 0003 on a database that already holds posts fills the index from the log."""
    with TestClient(create_app(settings(tmp_path))) as c:
        w = seed(publish_with(c))
        url = c.app.state.settings.resolved_database_url  # type: ignore[attr-defined]
    asyncio.run(downgrade(url, "0002"))  # the migrations' own downgrades
    con = sqlite3.connect(url.split("///", 1)[1])
    assert not con.execute("SELECT name FROM sqlite_master WHERE name = 'search_fts'").fetchall()
    con.close()
    with TestClient(create_app(settings(tmp_path))) as c:
        assert api_ids(c, "q=libraries") == [w["tools"]]
        assert api_ids(c, "q=zeppelin") == []


def _migration(name: str) -> Any:
    path = Path(search_module.__file__).parent / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stored_vectors_are_the_indexed_expression() -> None:
    """0004 stores exactly the vector 0003 indexed (its downgrade rebuilds that index), for the same kinds."""
    m3, m4 = _migration("0003_search"), _migration("0004_search_vectors")
    assert m4.tsvector_sql("payload") == m3.SEARCH_TSVECTOR_SQL
    assert tuple(m3.SEARCH_KINDS) == tuple(m4.SEARCH_KINDS) == search_module.SEARCH_KINDS


def _varied(publish: Publish) -> None:
    """Posts whose index entries exercise every field: tags lists (one empty), an empty summary, non-ASCII, quotes."""
    ana = Agent("search-ana")
    first = publish(ana.envelope("proposal", proposal_body("Café \"commons\" — été", text="Ünïcode text, \\ backslash.", tags=["a-b", "c"])))
    publish(ana.envelope("proposal", {"title": "Bare", "summary": "", "text": "An empty summary and tags.", "tags": []}))
    publish(ana.envelope("reply", {"target": first, "stance": "support", "text": "Yes.", "quote": "été"}))


def test_written_index_rows_are_what_the_trigger_computed(tmp_path: Path) -> None:
    """The writer's search_fts rows (migration 0006) equal what 0003's trigger read from each payload."""
    with TestClient(create_app(settings(tmp_path))) as c:
        seed(publish_with(c))
        _varied(publish_with(c))
        url = c.app.state.settings.resolved_database_url  # type: ignore[attr-defined]
    title, content = _migration("0003_search")._sqlite_fields("events")
    con = sqlite3.connect(url.split("///", 1)[1])
    written = con.execute("SELECT rowid, title, content FROM search_fts ORDER BY rowid").fetchall()
    expected = con.execute(
        f"SELECT seq, {title}, {content} FROM events WHERE kind IN ('proposal', 'outcome', 'reply') ORDER BY seq"
    ).fetchall()
    con.close()
    assert len(written) == 8 and written == expected


@pytest.mark.postgres
def test_search_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with TestClient(create_app(settings(tmp_path, database_url=postgres_url))) as c:
        w = seed(publish_with(c))
        check_search(c, w)
        _varied(publish_with(c))
    # The writer's stored vectors (migration 0006) are exactly 0004's trigger expression over each payload.
    assert asyncio.run(_vectors_differing(postgres_url)) == (8, 0)
    for sort in ("new", "relevance"):
        plan = asyncio.run(_plan(postgres_url, sort))  # an index of search_vectors (the GIN one, or the newest-first walk)
        assert "Seq Scan" not in plan and "Index Scan using events_pkey on events" in plan, plan
        assert "ix_search_vectors" in plan or "Index Scan Backward using search_vectors_pkey" in plan, plan
    # A log written before migration 0004: the migration stores the vector of every post already there.
    asyncio.run(downgrade(postgres_url, "0003"))  # 0004's downgrade: the expression index again, no table
    with TestClient(create_app(settings(tmp_path, database_url=postgres_url))) as c:
        assert api_ids(c, "q=libraries") == [w["tools"]]
        assert set(api_ids(c, "q=ladders")) == {w["tools"], w["report"]}
        assert api_ids(c, "q=zeppelin") == []
        check_search(c, w)


async def downgrade(url: str, revision: str) -> None:
    def run(conn: Any) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def _vectors_differing(url: str) -> tuple[int, int]:
    expression = _migration("0004_search_vectors").tsvector_sql("e.payload")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.exec_driver_sql(
                    f"SELECT count(*), count(*) FILTER (WHERE s.vec <> {expression}) "
                    "FROM search_vectors s JOIN events e ON e.seq = s.seq"
                )
            ).one()
    finally:
        await engine.dispose()
    return int(row[0]), int(row[1])


async def _plan(url: str, sort: str) -> str:
    """The plan of the statement search() runs (a tiny table: can the index serve it?)."""
    engine = create_async_engine(url)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))
            sa_event.listen(engine.sync_engine, "before_cursor_execute", capture)
            found = await conn.run_sync(search_module.search, search_module.Query.parse("ladders", sort=sort))
            sa_event.remove(engine.sync_engine, "before_cursor_execute", capture)
            assert len(found.items) == 2
            statement, parameters = seen[-1]
            return "\n".join(r[0] for r in (await conn.exec_driver_sql("EXPLAIN " + statement, parameters)).all())
    finally:
        await engine.dispose()
