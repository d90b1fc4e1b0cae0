"""Fixtures for the public web tests: an in-process app and a way to publish into it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from feeds.site import create_app
from forum.settings import Settings
from tests.feeds.helpers import event_id
from tests.support.timeouts import timeout


def settings(tmp_path: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "author_rate": 0,
        "address_rate": 0,
        "scores_interval_s": 0.2,
        "scores_min_new_ratings": 1,
        "sqlite_synchronous": "NORMAL",
    }
    base.update(over)
    return Settings(**base)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as c:
        yield c


Publish = Callable[..., str]


def publish_with(c: TestClient) -> Publish:
    def publish(*envelopes: dict[str, str]) -> str:
        """Publish each envelope (in order) and return the last id; fail on any refusal."""
        last = ""
        for env in envelopes:
            r = c.post("/api/v1/events", content=orjson.dumps(env))
            assert r.status_code in (200, 201), r.text
            last = event_id(env)
        return last

    return publish


@pytest.fixture
def publish(client: TestClient) -> Publish:
    return publish_with(client)


def publish_batch(c: TestClient, envelopes: list[dict[str, str]]) -> None:
    body = b"\n".join(orjson.dumps(e) for e in envelopes)
    r = c.post("/api/v1/events:batch", content=body)
    assert r.status_code == 200, r.text
    bad = [x for x in r.json()["results"] if not x["accepted"]]
    assert not bad, bad[:3]


def wait_for_scores(c: TestClient, target: str, *, fitted: bool = True) -> dict[str, Any]:
    """Until the scores engine has caught up with the log (and fitted, if asked)."""
    deadline = time.monotonic() + timeout(20)
    head = c.get("/healthz").json()["head_seq"]
    while True:
        r = c.get(f"/api/v1/scores/{target}")
        if r.status_code == 200:
            view = r.json()
            fit_ok = not fitted or bool(view.get("bridging"))
            if view["as_of_seq"] >= head and fit_ok:
                return dict(view)
        if time.monotonic() > deadline:
            raise AssertionError(f"scores for {target} did not catch up with seq {head}: {r.text[:300]}")
        time.sleep(0.05)
