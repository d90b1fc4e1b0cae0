"""The pages on PostgreSQL: the same answers, and the page queries use their indexes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from starlette.testclient import TestClient

from feeds import queries, scorecards
from feeds.site import create_app
from forum.db import create_engine as create_async_engine
from tests.feeds.conftest import publish_with, settings, wait_for_scores
from tests.feeds.helpers import Agent, outcome_body, proposal_body, rating_body
from tests.feeds.test_feeds_pages import Page

pytestmark = pytest.mark.postgres


def test_pages_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with TestClient(create_app(settings(tmp_path, database_url=postgres_url))) as c:
        publish = publish_with(c)
        alice, elm = Agent("pg-alice"), Agent("pg-elm")
        publish(alice.envelope("agent", {"name": "Alice", "about": "x"}))
        publish(elm.envelope("community", {"name": "Elm", "about": "y", "place": "z"}))
        p1 = publish(alice.envelope("proposal", proposal_body("Tool library", tags=["commons"])))
        p2 = publish(alice.envelope("proposal", proposal_body("Tool library v2", revises=p1)))
        o1 = publish(elm.envelope("outcome", outcome_body(p1)))
        for i in range(6):
            publish(Agent(f"pg-r{i}").envelope("rating", rating_body(p1, i / 6)))
        wait_for_scores(c, p1, fitted=False)

        assert Page(c.get("/").text).ids() == [o1, p2, p1]
        assert Page(c.get("/?tag=commons").text).ids() == [p2, p1]
        page = Page(c.get(f"/proposals/{p1}").text)
        assert f"/outcomes/{o1}" in {a["href"] for a in page.find("a")}
        assert f"/proposals/{p2}" in {a["href"] for a in page.find("a")}
        assert "Raters 6" in page.text
        assert "Elm" in Page(c.get(f"/outcomes/{o1}").text).text
        assert Page(c.get(f"/communities/{elm.did}").text).ids() == [o1]
        d = feedparser.parse(c.get(f"/feeds/proposals/{p1}.atom").content)
        assert not d.bozo and [e.id for e in d.entries] == [f"http://testserver/events/{o1}"]

        view = wait_for_scores(c, p1, fitted=False)

    # Before the engine has a target, pages count from the ratings table (criteria through
    # jsonb_each_text) and the outcome reports: the same figures as the engine's.
    direct, tried = asyncio.run(_direct(postgres_url, p1, p2))
    assert direct.count == view["count"] == 6 and direct.mean == pytest.approx(view["mean"])
    assert {x.key for x in direct.criteria} == set(view["criteria"]) == {"fairness-equity", "affordability"}
    assert (tried.get(p1, 0), tried.get(p2, 0)) == (1, 0)

    # The partial expression indexes of migration 0002 exist and the page queries use them.
    # So do those of migration 0005 (a page's replies, amendments and newest ratings).
    plans = asyncio.run(_plans(postgres_url, p1, alice.did))
    for index, plan in zip(PAGE_INDEXES, plans, strict=True):
        assert index in plan, plan


async def _direct(url: str, p1: str, p2: str) -> tuple[scorecards.Scores, dict[str, int]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: (scorecards.from_ratings_table(sync, p1), queries.communities_tried(sync, [p1, p2]))
            )
    finally:
        await engine.dispose()


PAGE_INDEXES = (
    "ix_events_outcome_proposal",
    "ix_events_proposal_revises",
    "ix_events_reply_target",
    "ix_events_amendment_proposal",
    "ix_ratings_target_seq",
)


def page_statements(proposal: str, author: str) -> list[Any]:
    """The statements that should use PAGE_INDEXES, in that order."""
    return [
        queries._outcomes_stmt(False, False, True).params(proposal=proposal, limit=101),
        queries._REVISIONS.params(proposal=proposal, author=author),
        queries._referring_stmt(("reply",), False, False, False, False).params(ref=proposal, limit=200),
        queries._referring_stmt(("amendment",), False, False, False, False).params(ref=proposal, limit=50),
        queries._CURRENT_RATINGS.params(t=proposal, limit=10),
    ]


async def _plans(url: str, proposal: str, author: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'events'"))).scalars().all()
            assert set(PAGE_INDEXES[:4]) <= set(names)
            await conn.execute(text("SET enable_seqscan = off"))  # a tiny table: can the index serve the query?
            out = []
            for stmt in page_statements(proposal, author):
                sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
                out.append("\n".join(r[0] for r in (await conn.execute(text("EXPLAIN " + sql))).all()))
            return out
    finally:
        await engine.dispose()
