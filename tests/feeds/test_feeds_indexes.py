"""On SQLite too, a popular proposal's page finds its outcome reports, versions, replies,
amendments and newest ratings through their own indexes (migrations 0002 and 0005), never by
walking its thousands of ratings in ``event_refs``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.dialects import sqlite
from starlette.testclient import TestClient

from feeds.site import create_app
from tests.feeds.conftest import publish_with, settings
from tests.feeds.helpers import Agent, proposal_body, rating_body
from tests.feeds.test_feeds_postgres import PAGE_INDEXES, page_statements


def test_page_queries_use_their_indexes_on_sqlite(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path))) as c:
        publish = publish_with(c)
        alice = Agent("ix-alice")
        p1 = publish(alice.envelope("proposal", proposal_body("Tool library")))
        for i in range(3):
            publish(Agent(f"ix-r{i}").envelope("rating", rating_body(p1, i / 3)))
        publish(Agent("ix-bob").envelope("reply", {"target": p1, "stance": "support", "text": "Yes."}))
        db = c.app.state.settings.resolved_database_url.split("///", 1)[1]  # type: ignore[attr-defined]
    con = sqlite3.connect(db)
    try:
        for index, stmt in zip(PAGE_INDEXES, page_statements(p1, alice.did), strict=True):
            sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + sql))
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, (index, plan)
    finally:
        con.close()
