"""feeds.logindex keeps, incrementally, what the grouped queries compute from the whole log:
proposals by tag and the proposals each community reported on (its experiments), with
retractions of proposals and of reports (one of two reports on the same pair, then the other).
Real signed events through the HTTP API, real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from feeds import queries
from feeds.logindex import LogIndex
from feeds.reader import Reader
from feeds.site import create_app
from tests.feeds.conftest import Publish, publish_with, settings
from tests.feeds.helpers import Agent, outcome_body, proposal_body

T = TypeVar("T")


def grouped(conn: Any, tags: list[str], communities: list[str]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return (
        {t: queries.proposals_with_tag(conn, t) for t in tags},
        {c: queries.proposals_tried_by(conn, c) for c in communities},
    )


def indexed(index: LogIndex, tags: list[str], communities: list[str]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return ({t: set(index.with_tag(t)) for t in tags}, {c: set(index.tried_by(c)) for c in communities})


def check(c: TestClient, publish: Publish) -> None:
    reader = Reader(c.app.state.store)  # type: ignore[attr-defined]

    def run(fn: Callable[[Connection], T]) -> T:  # on the app's own loop (asyncpg) or reader threads (SQLite)
        assert c.portal is not None
        return c.portal.call(reader.run, fn)

    alice, elm, oak = Agent("li-alice"), Agent("li-elm"), Agent("li-oak")
    publish(elm.envelope("community", {"name": "Elm", "about": "x"}), oak.envelope("community", {"name": "Oak", "about": "y"}))
    p1 = publish(alice.envelope("proposal", proposal_body("Tool library", tags=["commons", "tools"])))
    p2 = publish(alice.envelope("proposal", proposal_body("Seed swap", tags=["commons"])))
    tags, comms = ["commons", "tools", "nothing"], [elm.did, oak.did, alice.did]
    index = LogIndex()
    run(index.update)
    assert indexed(index, tags, comms) == run(lambda conn: grouped(conn, tags, comms))
    assert index.with_tag("commons") == {p1, p2}
    # Reports: two by Elm on p1 (one experiment), one on p2; Oak on p1.
    r1 = publish(elm.envelope("outcome", outcome_body(p1, status="running", verdict=None)))
    r2 = publish(elm.envelope("outcome", outcome_body(p1)))
    r3 = publish(elm.envelope("outcome", outcome_body(p2)))
    publish(oak.envelope("outcome", outcome_body(p1)))
    run(index.update)
    assert indexed(index, tags, comms) == run(lambda conn: grouped(conn, tags, comms))
    assert index.tried_by(elm.did) == {p1, p2} and index.tried_by(oak.did) == {p1}
    # Retract one of Elm's two reports on p1: still tried; then the other: no longer.
    publish(elm.envelope("retraction", {"target": r1, "reason": "duplicate"}))
    run(index.update)
    assert index.tried_by(elm.did) == {p1, p2}
    publish(elm.envelope("retraction", {"target": r2, "reason": "wrong proposal"}))
    run(index.update)
    assert index.tried_by(elm.did) == {p2}
    # Retract a proposal: gone from its tags (the report on it stays, as the query says).
    publish(alice.envelope("retraction", {"target": p2, "reason": "withdrawn"}))
    run(index.update)
    assert index.with_tag("commons") == {p1} and "nothing" not in index.tags
    assert indexed(index, tags, comms) == run(lambda conn: grouped(conn, tags, comms))
    assert r3  # still live
    # A fresh index folds the whole log to the same answer; nothing new is a no-op.
    fresh = run(LogIndex().update)
    assert indexed(fresh, tags, comms) == indexed(index, tags, comms)
    seq = index.seq
    assert run(index.update).seq == seq
    # The pages count with it: Elm tried one proposal (p2) in one live report, Oak one (p1).
    page = c.get("/communities").text
    assert page.count("1 experiment ·") == 2 and "experiments ·" not in page
    assert "1 proposal tried, in 1 report" in c.get(f"/communities/{elm.did}").text


def test_log_index_on_sqlite(client: TestClient, publish: Publish) -> None:
    check(client, publish)


@pytest.mark.postgres
def test_log_index_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with TestClient(create_app(settings(tmp_path, database_url=postgres_url))) as c:
        check(c, publish_with(c))
