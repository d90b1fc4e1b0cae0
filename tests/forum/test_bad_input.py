"""Every kind of bad input is refused with its reason prefix, stores nothing,
leaves the connection working and has no effect on other clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.forum.helpers import Signer, agent, community, event_id, proposal, rating


@dataclass
class World:
    alice: Signer  # has a profile and a proposal
    bob: Signer  # has a proposal
    steward: Signer  # no community profile
    alice_proposal: str
    bob_proposal: str


def publish_frame(env: Any) -> str:
    return orjson.dumps(["PUBLISH", env]).decode()


def payload_frame(signer: Signer, payload: str) -> str:
    return publish_frame(signer.sign_raw(payload))


def _altered(w: World) -> str:
    env = proposal(w.alice, "Original")
    env["payload"] = env["payload"].replace("Original", "Altered!")
    return publish_frame(env)


def _wrong_sig(w: World) -> str:
    env = proposal(w.alice, "One")
    env["sig"] = proposal(w.alice, "Two")["sig"]
    return publish_frame(env)


def _author_mismatch(w: World) -> str:
    payload = w.alice.payload("agent", {"name": "x", "about": "y"})
    return publish_frame(w.bob.sign_raw(payload))  # signed by bob, claims alice


def _bad_did(w: World) -> str:
    p = w.alice.payload("agent", {"name": "x", "about": "y"}).replace(w.alice.did, "did:key:z6MkNOTAKEY")
    return payload_frame(w.alice, p)


def _dup_key(w: World) -> str:
    p = w.alice.payload("agent", {"name": "x", "about": "y"})
    p = p.replace('"name":"x"', '"name":"x","name":"z"')
    return payload_frame(w.alice, p)


def _dup_key_top(w: World) -> str:
    p = w.alice.payload("agent", {"name": "x", "about": "y"})
    return payload_frame(w.alice, p.replace('"v":1', '"v":1,"v":1'))


def _nan(w: World) -> str:
    p = w.alice.payload("rating", {"target": w.bob_proposal, "score": 0.5, "criteria": {}})
    return payload_frame(w.alice, p.replace('"score":0.5', '"score":NaN'))


def _unknown_kind(w: World) -> str:
    return publish_frame(w.alice.envelope("poll", {"question": "?"}))


def _unknown_top(w: World) -> str:
    return publish_frame(w.alice.envelope("agent", {"name": "x", "about": "y"}, extra=1))


def _missing_field(w: World) -> str:
    return publish_frame(w.alice.envelope("proposal", {"title": "t", "summary": "s", "tags": []}))


def _wrong_type(w: World) -> str:
    return publish_frame(w.alice.envelope("proposal", {"title": 5, "summary": "s", "text": "", "tags": []}))


def _long_string(w: World) -> str:
    return publish_frame(w.alice.envelope("agent", {"name": "x" * 101, "about": "y"}))


def _long_list(w: World) -> str:
    tags = [f"t{i}" for i in range(11)]
    return publish_frame(w.alice.envelope("proposal", {"title": "t", "summary": "s", "text": "", "tags": tags}))


def _too_large(w: World) -> str:
    return publish_frame(w.alice.envelope("proposal", {"title": "t", "summary": "s", "text": "x" * 70000, "tags": []}))


def _future(w: World) -> str:
    ahead = int(time.time() * 1000) + 11 * 60 * 1000
    return publish_frame(w.alice.envelope("agent", {"name": "x", "about": "y"}, created_at=ahead))


def _rate_own(w: World) -> str:
    return publish_frame(rating(w.alice, w.alice_proposal))


def _rate_self(w: World) -> str:
    return publish_frame(rating(w.alice, w.alice.did))


def _ghost_target(w: World) -> str:
    return publish_frame(rating(w.alice, Signer().did))  # a did:key that never published


def _score_range(w: World) -> str:
    return publish_frame(rating(w.alice, w.bob_proposal, score=1.5))


def _outcome_no_community(w: World) -> str:
    from tests.forum.helpers import outcome

    return publish_frame(outcome(w.steward, w.alice_proposal))


def _retract_other(w: World) -> str:
    return publish_frame(w.alice.envelope("retraction", {"target": w.bob_proposal}))


def _bad_envelope(w: World) -> str:
    return orjson.dumps(["PUBLISH", {"payload": "{}", "sig": "x", "extra": 1}]).decode()


Case = tuple[str, Callable[[World], str | bytes], str, str]

CASES: list[Case] = [
    # name, frame builder, expected frame type, expected reason prefix
    ("wrong signature", _wrong_sig, "OK", "invalid"),
    ("payload altered after signing", _altered, "OK", "invalid"),
    ("author does not match the signing key", _author_mismatch, "OK", "invalid"),
    ("malformed did:key", _bad_did, "OK", "invalid"),
    ("duplicate JSON keys in body", _dup_key, "OK", "invalid"),
    ("duplicate JSON keys at top level", _dup_key_top, "OK", "invalid"),
    ("NaN", _nan, "OK", "invalid"),
    ("unknown kind", _unknown_kind, "OK", "invalid"),
    ("unknown top-level key", _unknown_top, "OK", "invalid"),
    ("body missing a required field", _missing_field, "OK", "invalid"),
    ("body field of the wrong type", _wrong_type, "OK", "invalid"),
    ("over-long string", _long_string, "OK", "invalid"),
    ("over-long list", _long_list, "OK", "invalid"),
    ("payload over the limit", _too_large, "OK", "too-large"),
    ("created_at too far ahead", _future, "OK", "invalid"),
    ("rating one's own post", _rate_own, "OK", "invalid"),
    ("rating oneself", _rate_self, "OK", "invalid"),
    ("rating a did:key that never published (ghost target)", _ghost_target, "OK", "invalid"),
    ("rating score out of range", _score_range, "OK", "invalid"),
    ("outcome by an author with no community profile", _outcome_no_community, "OK", "invalid"),
    ("retraction of someone else's event", _retract_other, "OK", "invalid"),
    ("envelope with an extra key", _bad_envelope, "OK", "invalid"),
    ("not JSON at all", lambda w: "this is not json", "NOTICE", "invalid"),
    ("duplicate keys in the frame", lambda w: '["SUBSCRIBE","a",{"limit":1,"limit":2}]', "NOTICE", "invalid"),
    ("a binary frame", lambda w: b'["PUBLISH", {}]', "NOTICE", "invalid"),
    ("an unknown message type", lambda w: '["SHOUT", "hello"]', "NOTICE", "invalid"),
    ("a frame that is not an array", lambda w: '{"PUBLISH": 1}', "NOTICE", "invalid"),
    ("SUBSCRIBE with a bad filter", lambda w: '["SUBSCRIBE", "s1", {"kinds": ["nonsense"]}]', "CLOSED", "invalid"),
    ("SUBSCRIBE with an unknown filter field", lambda w: '["SUBSCRIBE", "s2", {"colour": "red"}]', "CLOSED", "invalid"),
    ("SUBSCRIBE with a bad sub_id", lambda w: '["SUBSCRIBE", "", {}]', "NOTICE", "invalid"),
]


def _setup(ws: Any) -> World:
    w = World(Signer(), Signer(), Signer(), "", "")
    frames = [agent(w.alice), proposal(w.alice, "Alice's idea"), proposal(w.bob, "Bob's idea")]
    for env in frames:
        ws.send_text(publish_frame(env))
        msg = orjson.loads(ws.receive_text())
        assert msg[:3] == ["OK", event_id(env), True], msg
    w.alice_proposal, w.bob_proposal = event_id(frames[1]), event_id(frames[2])
    return w


def test_bad_input_is_refused_and_loses_nothing(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws, client.websocket_connect("/ws") as watcher:
        w = _setup(ws)
        head = client.get("/healthz").json()["head_seq"]
        watcher.send_text(orjson.dumps(["SUBSCRIBE", "watch", {"after_seq": head}]).decode())
        assert orjson.loads(watcher.receive_text()) == ["LIVE", "watch", head]

        for name, build, frame_type, reason in CASES:
            frame = build(w)
            if isinstance(frame, bytes):
                ws.send_bytes(frame)
            else:
                ws.send_text(frame)
            msg = orjson.loads(ws.receive_text())
            assert msg[0] == frame_type, (name, msg)
            text = msg[-1]
            assert text.startswith(reason + ": "), (name, msg)
            if frame_type == "OK":
                assert msg[2] is False, (name, msg)
            # Nothing stored, and the same connection keeps working.
            assert client.get("/healthz").json()["head_seq"] == head, name

        # The connection still works, and the watcher saw nothing but the good event.
        good = proposal(w.bob, "After the storm")
        ws.send_text(publish_frame(good))
        assert orjson.loads(ws.receive_text())[:3] == ["OK", event_id(good), True]
        msg = orjson.loads(watcher.receive_text())
        assert msg[0] == "EVENT" and msg[2] == head + 1 and msg[3] == good


def test_duplicate_is_ok_true_with_prefix(client: TestClient) -> None:
    s = Signer()
    env = agent(s)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(publish_frame(env))
        assert orjson.loads(ws.receive_text()) == ["OK", event_id(env), True, ""]
        ws.send_text(publish_frame(env))
        msg = orjson.loads(ws.receive_text())
        assert msg[:3] == ["OK", event_id(env), True] and msg[3].startswith("duplicate: ")
    assert client.get("/healthz").json()["head_seq"] == 1


def test_pow_minimum(tmp_path: Any, database_url: str) -> None:
    from forum.app import create_app
    from tests.forum.conftest import make_settings

    s = Signer()
    with TestClient(create_app(make_settings(tmp_path, database_url, min_pow_bits=8))) as c:
        r = c.post("/api/v1/events", json=agent(s))
        assert r.status_code == 400 and r.json()["reason"] == "pow"
        # Mine a nonce: leading zero bits of the id >= 8.
        for i in range(100000):
            env = s.envelope("agent", {"name": "miner", "about": "pow"}, created_at=1, nonce=str(i))
            if event_id(env).startswith("00"):
                break
        r = c.post("/api/v1/events", json=env)
        assert r.status_code == 201, r.json()


@pytest.mark.parametrize("score", [-1, 1, 0, -0.25])
def test_rating_bounds_inclusive(client: TestClient, score: float) -> None:
    a, b = Signer(), Signer()
    p = proposal(b)
    assert client.post("/api/v1/events", json=p).status_code == 201
    r = client.post("/api/v1/events", json=rating(a, event_id(p), score=score))
    assert r.status_code == 201, r.json()


def test_outcome_needs_community_then_accepted(client: TestClient) -> None:
    from tests.forum.helpers import outcome

    author, steward = Signer(), Signer()
    p = proposal(author)
    assert client.post("/api/v1/events", json=p).status_code == 201
    refused = client.post("/api/v1/events", json=outcome(steward, event_id(p)))
    assert refused.status_code == 400 and "community profile" in refused.json()["message"]
    assert client.post("/api/v1/events", json=community(steward)).status_code == 201
    assert client.post("/api/v1/events", json=outcome(steward, event_id(p))).status_code == 201


ABSURD_METRICS = [
    ({"observed": 25, "n": 0}, "from n = 0 samples"),
    ({"n": 10**12}, "metrics[0].n"),
    ({"n": -1}, "metrics[0].n"),
    ({"baseline": 1e300}, "metrics[0].baseline"),
    ({"observed": -1e16}, "metrics[0].observed"),
]


def test_absurd_outcome_metrics_are_refused_and_nothing_published_changes(tmp_path: Any, database_url: str) -> None:
    """Issue 10: n = 0 with an observed value, n = 10^12, magnitudes beyond 1e15 and a
    metric reported twice are refused with reason ``invalid`` and words saying which
    metric and why; nothing is stored and the published scores do not move.  A metric not
    measured yet (observed null, n = 0) stays valid."""
    from forum.app import create_app
    from tests.forum.conftest import make_settings
    from tests.forum.helpers import outcome

    settings = make_settings(tmp_path, database_url, scores_interval_s=0.2, scores_min_new_ratings=1)
    with TestClient(create_app(settings)) as client:
        author, steward = Signer(), Signer()
        p = proposal(author)
        pid = event_id(p)
        pending = outcome(
            steward, pid, status="running", verdict=None,
            metrics=[{"name": "loans", "unit": "count", "baseline": 10, "observed": None, "n": 0, "higher_is_better": True}],
        )  # fmt: skip
        for env in (p, community(steward), outcome(steward, pid), pending):
            assert client.post("/api/v1/events", json=env).status_code == 201
        head = client.get("/healthz").json()["head_seq"]
        deadline = time.monotonic() + 20
        while (view := client.get(f"/api/v1/scores/{pid}")).status_code != 200 or view.json()["outcomes"] is None:
            assert time.monotonic() < deadline, "no outcome summary"
            time.sleep(0.05)
        before = view.json()
        assert before["outcomes"]["communities"] == 1

        good = {"name": "loans", "unit": "count", "baseline": 10, "observed": 25, "n": 120, "higher_is_better": True}
        bad_bodies = [([{**good, **change}], words) for change, words in ABSURD_METRICS]
        bad_bodies.append(([good, {**good, "observed": 30}], "reported twice in one outcome"))
        for metrics, words in bad_bodies:
            r = client.post("/api/v1/events", json=outcome(steward, pid, metrics=metrics))
            assert r.status_code == 400, (metrics, r.text)
            body = r.json()
            assert body["reason"] == "invalid" and words in body["message"], (metrics, body)
            # over WebSocket: the same reason in the OK frame
            with client.websocket_connect("/ws") as ws:
                env = outcome(steward, pid, metrics=metrics)
                ws.send_text(publish_frame(env))
                ok = orjson.loads(ws.receive_text())
                assert ok[:3] == ["OK", event_id(env), False] and ok[3].startswith("invalid: "), ok
        assert client.get("/healthz").json()["head_seq"] == head
        time.sleep(0.5)  # a refit would have had time to run
        after = client.get(f"/api/v1/scores/{pid}").json()
        assert after == before
