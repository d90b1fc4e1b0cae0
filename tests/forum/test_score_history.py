"""Score history (forum/scores/history.py): count and mean over log time, deterministic from
the log, bounded, and served by a real forum at /api/v1/scores/{target}/history."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from starlette.testclient import TestClient

from forum.app import create_app
from forum.scores.history import ScoreHistory, recorded
from forum.scores.ledger import Ledger
from forum.settings import Settings
from forum.store import event_from_row
from tests.forum.helpers import Signer, event_id, proposal, rating
from tests.support.timeouts import timeout

TARGET = "a" * 64


def feed(envelopes: list[dict[str, str]]) -> ScoreHistory:
    ledger, hist = Ledger(), ScoreHistory()
    for seq, env in enumerate(envelopes, start=1):
        hist.apply(ledger, seq, event_from_row(env["payload"], env["sig"], event_id(env)))
    return hist


def test_follows_current_ratings_replacements_and_retractions() -> None:
    a, b = Signer("hist-a"), Signer("hist-b")
    first = rating(a, TARGET, 0.8, created_at=1_000)
    envs = [
        first,
        rating(b, TARGET, -0.2, created_at=2_000),
        rating(a, TARGET, 0.4, created_at=3_000),  # replaces a's first rating
        rating(a, TARGET, 1.0, created_at=500),  # older than a's current one: changes nothing
    ]
    retract_b = b.envelope("retraction", {"target": event_id(envs[1]), "reason": "oops"}, created_at=4_000)
    envs.append(retract_b)
    points = feed(envs).of(TARGET)
    assert [(s, c) for s, c, _ in points] == [(1, 1), (2, 2), (3, 2), (5, 1)]
    assert [m for _, _, m in points] == [0.8, 0.3, 0.1, 0.4]


def test_same_log_same_history_and_bounded() -> None:
    raters = [Signer(f"hist-r{i}") for i in range(300)]
    envs = [rating(r, TARGET, round((i % 7) / 7 - 0.4, 3), created_at=1_000 + i) for i, r in enumerate(raters)]
    one, two = feed(envs).of(TARGET), feed(envs).of(TARGET)
    assert one == two
    assert one[-1][1] == 300 and abs(one[-1][2] - sum(round((i % 7) / 7 - 0.4, 3) for i in range(300)) / 300) < 1e-6
    assert len(one) == sum(recorded(n) for n in range(1, 301)) + (not recorded(300)) < 60  # ~8 per doubling, plus the current state
    assert [recorded(n) for n in range(1, 20)] == [True] * 15 + [True, False, True, False]
    assert sum(recorded(n) for n in range(1, 5001)) < 110


def test_served_by_the_forum(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, author_rate=0, address_rate=0, scores_interval_s=0.2, scores_min_new_ratings=1, sqlite_synchronous="NORMAL")
    with TestClient(create_app(settings)) as c:
        author = Signer("hist-author")
        p = proposal(author)
        pid = event_id(p)
        envs = [p, *(rating(Signer(f"hist-s{i}"), pid, i / 10) for i in range(4))]
        for env in envs:
            assert c.post("/api/v1/events", content=orjson.dumps(env)).status_code in (200, 201)
        deadline = time.monotonic() + timeout(10)
        while True:
            r = c.get(f"/api/v1/scores/{pid}/history")
            if r.status_code == 200 and r.json()["points"][-1][1] == 4:
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.05)
        doc = r.json()
        assert doc["target"] == pid and [p[1] for p in doc["points"]] == [1, 2, 3, 4]
        assert doc["points"][-1][2] == 0.15
        missing = c.get(f"/api/v1/scores/{'b' * 64}/history")
        assert missing.status_code == 404 and missing.json()["reason"] == "not-found"
