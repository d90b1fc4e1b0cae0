"""Scores in the forum: computed from the log in the background, served over HTTP,
streamed as SCORES frames, stamped with the log position they reflect."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from starlette.testclient import TestClient

from forum.app import create_app
from forum.scores.documents import cheap_document
from forum.scores.ledger import Ledger
from forum.store import event_from_row
from raters.compare import compare_results
from tests.forum.conftest import make_settings
from tests.forum.helpers import Signer, agent, community, event_id, outcome, proposal, rating
from tests.support.timeouts import timeout


def _wait_for(client: TestClient, head: int, fitted: bool = False) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout(20)
    while time.monotonic() < deadline:
        snap = client.get("/api/v1/scores:snapshot").json()
        cheap_ok = snap["cheap"] and snap["cheap"]["as_of_seq"] >= head
        fit_ok = not fitted or (snap["fitted"] and snap["fitted"]["fit_as_of_seq"] >= head)
        if cheap_ok and fit_ok:
            return snap  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"scores did not reach seq {head}")


def _world(client: TestClient) -> tuple[list[str], list[dict[str, str]]]:
    """Two camps of 8 raters; proposals 0-1 liked by all, 2 by camp A only, 3 by camp B only."""
    authors = [Signer() for _ in range(4)]
    props = [proposal(a, f"Idea {i}") for i, a in enumerate(authors)]
    camp_a, camp_b = [Signer() for _ in range(8)], [Signer() for _ in range(8)]
    envs = [agent(a) for a in authors] + props
    likes = {0: (0.9, 0.8), 1: (0.7, 0.8), 2: (0.9, -0.9), 3: (-0.8, 0.9)}
    for i, p in enumerate(props):
        for r in camp_a:
            envs.append(rating(r, event_id(p), likes[i][0]))
        for r in camp_b:
            envs.append(rating(r, event_id(p), likes[i][1]))
    body = b"\n".join(orjson.dumps(e) for e in envs)
    assert all(x["accepted"] for x in client.post("/api/v1/events:batch", content=body).json()["results"])
    return [event_id(p) for p in props], envs


def test_scores_served_streamed_and_reproducible(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, scores_interval_s=0.2, scores_min_new_ratings=1)
    with TestClient(create_app(settings)) as client:
        with client.websocket_connect("/ws") as ws:
            ids, _ = _world(client)
            head = client.get("/healthz").json()["head_seq"]
            snap = _wait_for(client, head, fitted=True)

            s0 = client.get(f"/api/v1/scores/{ids[0]}").json()
            assert s0["count"] == 16 and abs(s0["mean"] - 0.85) < 1e-9
            assert s0["as_of_seq"] >= head and s0["algorithm"] == "mycelium-raters"
            assert s0["criteria"]["fairness"]["count"] == 16
            assert sum(s0["histogram"]) == 16
            assert s0["bridging"]["status"] == "bridging"
            divisive = client.get(f"/api/v1/scores/{ids[2]}").json()
            assert divisive["bridging"]["status"] != "bridging"
            assert client.get("/api/v1/scores/" + "0" * 64).status_code == 404

            listing = client.get("/api/v1/scores?sort=bridging&kind=proposal").json()["scores"]
            assert {x["target"] for x in listing[:2]} == {ids[0], ids[1]}

            groups = client.get("/api/v1/groups").json()
            assert groups["k"] >= 2
            assert sum(g["size"] for g in groups["groups"]) == 16

            # Streaming: current scores first, then an update after a new rating.
            ws.send_text(orjson.dumps(["SUBSCRIBE", "sc", {"scores": [ids[3]]}]).decode())
            frames = [orjson.loads(ws.receive_text()) for _ in range(2)]
            first = next(f for f in frames if f[0] == "SCORES")
            assert first[1] == "sc" and first[2]["target"] == ids[3] and first[2]["count"] == 16
            late = Signer()
            assert client.post("/api/v1/events", json=rating(late, ids[3], -1.0)).status_code == 201
            while True:
                f = orjson.loads(ws.receive_text())
                if f[0] == "SCORES" and f[2]["count"] == 17:
                    break

        # Anyone can recompute the cheap document from the export alone.
        snap = _wait_for(client, head + 1)
        ledger = Ledger()
        for line in client.get("/api/v1/export").text.splitlines():
            row = orjson.loads(line)
            if row["seq"] <= snap["cheap"]["as_of_seq"]:
                ledger.apply(row["seq"], event_from_row(row["payload"], row["sig"], row["id"]))
        mine = cheap_document(ledger)
        assert mine["targets"] == snap["cheap"]["targets"]
        assert compare_results(mine["aggregates"], snap["cheap"]["aggregates"]) == []
        assert mine["histogram"] == snap["cheap"]["histogram"]


def test_retracted_rating_falls_back_and_outcomes_summarized(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, scores_interval_s=0.2, scores_min_new_ratings=1)
    with TestClient(create_app(settings)) as client:
        author, rater, steward = Signer(), Signer(), Signer()
        p = proposal(author)
        pid = event_id(p)
        first = rating(rater, pid, 0.2, created_at=1000)
        second = rating(rater, pid, 0.8, created_at=2000)
        running = Signer()  # a pilot still running: its metric is not measured yet
        unmeasured = outcome(
            running, pid, status="running", verdict=None,
            metrics=[{"name": "loans", "unit": "count", "baseline": 10, "observed": None, "n": 0, "higher_is_better": True}],
        )
        envs = [p, first, second, community(steward), outcome(steward, pid), community(running), unmeasured]
        for env in envs:
            assert client.post("/api/v1/events", json=env).status_code == 201
        s = _wait_for(client, 7, fitted=True)  # the outcome summaries are part of the fitted document
        view = client.get(f"/api/v1/scores/{pid}").json()
        assert view["count"] == 1 and view["mean"] == 0.8
        assert view["outcomes"]["communities"] == 2 and view["outcomes"]["by_verdict"] == {"success": 1}
        assert view["outcomes"]["metrics"][0]["skipped"] == 1
        client.post("/api/v1/events", json=rater.envelope("retraction", {"target": event_id(second)}))
        _wait_for(client, 8)
        assert client.get(f"/api/v1/scores/{pid}").json()["mean"] == 0.2
        assert s["cheap"]["as_of_seq"] == 7


def test_scores_after_restart_equal_scores_before(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, scores_interval_s=0.2, scores_min_new_ratings=1)
    with TestClient(create_app(settings)) as client:
        _world(client)
        head = client.get("/healthz").json()["head_seq"]
        before = _wait_for(client, head, fitted=True)
    with TestClient(create_app(settings)) as client:  # a new process would replay the same log
        after = _wait_for(client, head, fitted=True)
    assert after["cheap"] == before["cheap"]
    assert compare_results(before["fitted"]["result"], after["fitted"]["result"]) == []
