"""Subscriptions: stored then LIVE then live; resume without gaps or duplicates;
filters; slow subscribers are closed without slowing anyone else."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from forum.db import create_engine, migrate
from forum.hub import Hub, Outbox, Subscription
from forum.metrics import Metrics
from forum.protocol.events import Limits, verify_envelope
from forum.protocol.filters import Filter
from forum.store import Accepted, Store, Stored
from tests.forum.helpers import Signer, agent, event_id, proposal, rating


def send(ws: Any, msg: list[Any]) -> None:
    ws.send_text(orjson.dumps(msg).decode())


def recv(ws: Any) -> list[Any]:
    return orjson.loads(ws.receive_text())  # type: ignore[no-any-return]


def publish_all(client: TestClient, envs: list[dict[str, str]]) -> None:
    body = b"\n".join(orjson.dumps(e) for e in envs)
    results = client.post("/api/v1/events:batch", content=body).json()["results"]
    assert all(r["accepted"] for r in results), results


def test_after_seq_stored_then_live_then_resume(client: TestClient) -> None:
    s = Signer()
    first = [proposal(s, f"Idea {i}") for i in range(1200)]  # more than one page inside the server
    publish_all(client, first)
    seen: list[int] = []
    with client.websocket_connect("/ws") as ws:
        send(ws, ["SUBSCRIBE", "all", {"after_seq": 0}])
        while (m := recv(ws))[0] == "EVENT":
            seen.append(m[2])
        assert m == ["LIVE", "all", 1200]
        live = proposal(s, "Live one")
        send(ws, ["PUBLISH", live])
        frames = [recv(ws), recv(ws)]
        kinds = sorted(f[0] for f in frames)
        assert kinds == ["EVENT", "OK"]
        ev = next(f for f in frames if f[0] == "EVENT")
        assert ev[2] == 1201 and ev[3] == live
        seen.append(ev[2])
    # Disconnected: more events arrive meanwhile.
    publish_all(client, [proposal(s, f"While away {i}") for i in range(7)])
    with client.websocket_connect("/ws") as ws:
        send(ws, ["SUBSCRIBE", "all", {"after_seq": seen[-1]}])
        while (m := recv(ws))[0] == "EVENT":
            seen.append(m[2])
        assert m == ["LIVE", "all", 1208]
    assert seen == list(range(1, 1209))  # no gaps, no duplicates, in order


def test_newest_limit_without_after_seq(client: TestClient) -> None:
    s = Signer()
    publish_all(client, [proposal(s, f"Idea {i}") for i in range(10)])
    with client.websocket_connect("/ws") as ws:
        send(ws, ["SUBSCRIBE", "n", {"limit": 3}])
        got = [recv(ws) for _ in range(4)]
    assert [g[2] for g in got[:3]] == [8, 9, 10]
    assert got[3] == ["LIVE", "n", 10]


def test_filters_apply_to_stored_and_live(client: TestClient) -> None:
    alice, bob = Signer(), Signer()
    p = proposal(alice, "Gardens", ["gardens"])
    publish_all(client, [agent(alice), p, proposal(bob, "Streets", ["streets"])])
    pid = event_id(p)
    with client.websocket_connect("/ws") as ws:
        send(ws, ["SUBSCRIBE", "refs", {"refs": [pid], "after_seq": 0}])
        assert recv(ws) == ["LIVE", "refs", 3]
        send(ws, ["SUBSCRIBE", "tags", {"tags": ["gardens"], "kinds": ["proposal"]}])
        m = recv(ws)
        assert m[:3] == ["EVENT", "tags", 2]
        assert recv(ws) == ["LIVE", "tags", 3]
        r = rating(bob, pid, 0.7)
        other = proposal(bob, "Unrelated", ["streets"])
        publish_all(client, [other, r])
        m = recv(ws)
        assert m[:3] == ["EVENT", "refs", 5] and m[3] == r
        send(ws, ["UNSUBSCRIBE", "refs"])
        assert recv(ws) == ["CLOSED", "refs", ""]
        publish_all(client, [rating(alice, event_id(other), -0.2), proposal(alice, "More gardens", ["gardens"])])
        m = recv(ws)
        assert m[:3] == ["EVENT", "tags", 7]


def test_subscription_limit_per_connection(tmp_path: Path, database_url: str) -> None:
    from forum.app import create_app
    from tests.forum.conftest import make_settings

    with TestClient(create_app(make_settings(tmp_path, database_url, max_subscriptions_per_connection=2))) as c:
        with c.websocket_connect("/ws") as ws:
            for i in range(2):
                send(ws, ["SUBSCRIBE", f"s{i}", {}])
                assert recv(ws)[0] == "LIVE"
            send(ws, ["SUBSCRIBE", "s2", {}])
            m = recv(ws)
            assert m[0] == "CLOSED" and m[2].startswith("blocked: ")


@pytest.mark.parametrize("queue_bytes", [2000])
async def test_slow_subscriber_is_closed_and_others_get_everything(tmp_path: Path, queue_bytes: int) -> None:
    """Real store, real hub; one outbox is never drained (a peer that stopped reading)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/f.db")
    await migrate(engine)
    store = Store(engine)
    hub = Hub(store, Metrics(), queue_bytes=queue_bytes)
    await hub.start()
    slow, fast = Outbox(), Outbox()
    s_slow, s_fast = Subscription(slow, "slow", Filter()), Subscription(fast, "fast", Filter())
    await hub.run_subscription(s_slow)
    await hub.run_subscription(s_fast)
    received: list[str] = []
    s = Signer()
    events = [verify_envelope(proposal(s, f"E{i}"), limits=Limits(), now_ms=2**52) for i in range(40)]
    results = await store.write_batch(events)
    for r, e in zip(results, events, strict=True):
        assert isinstance(r, Accepted)
        hub.deliver([Stored(r.seq, e)])  # one event at a time; the fast reader keeps up
        while fast.frames:
            received.append(await fast.get() or "")
    assert [orjson.loads(f)[0] for f in received] == ["LIVE"] + ["EVENT"] * 40
    slow_frames = [orjson.loads(f) for f, _ in slow.frames]
    kept = [f for f, _ in slow.frames if f.startswith('["EVENT"')]
    # The budget is in bytes: as many events as fit, then CLOSED with the resume hint.
    assert [f[0] for f in slow_frames] == ["LIVE"] + ["EVENT"] * len(kept) + ["CLOSED"]
    assert 0 < sum(map(len, kept)) <= queue_bytes < sum(map(len, kept)) + len(kept[-1]) + 10
    assert slow_frames[-1][2].startswith("error: subscriber too slow")
    assert f"after_seq set to the last seq you received ({slow_frames[-2][2]})" in slow_frames[-1][2]
    assert s_slow not in hub.live and s_fast in hub.live
    await hub.stop()
    await engine.dispose()


def test_frame_limit_counts_bytes_and_ids_reject_trailing_newline(tmp_path: Path, database_url: str) -> None:
    from forum.app import create_app
    from tests.forum.conftest import make_settings

    with TestClient(create_app(make_settings(tmp_path, database_url, max_frame_bytes=4096))) as c:
        with c.websocket_connect("/ws") as ws:
            ws.send_text('["PUBLISH", "' + "é" * 3000 + '"]')  # 3,000 characters, 6,000 bytes
            m = recv(ws)
            assert m[0] == "NOTICE" and m[1].startswith("too-large: ")
            send(ws, ["SUBSCRIBE", "s1\n", {}])
            m = recv(ws)
            assert m[0] == "NOTICE" and m[1].startswith("invalid: ")
            send(ws, ["SUBSCRIBE", "s1", {"ids": ["0" * 64 + "\n"]}])
            assert recv(ws)[:2] == ["CLOSED", "s1"]


async def test_indexed_live_matching_equals_checking_every_filter(tmp_path: Path) -> None:
    """The hub's index and filter grouping deliver exactly what brute force would."""
    import random

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/f.db")
    await migrate(engine)
    try:
        store = Store(engine)
        hub = Hub(store, Metrics(), queue_bytes=10_000_000)
        await hub.start()
        rng = random.Random(7)
        signers = [Signer(f"idx{i}") for i in range(3)]
        base = [proposal(s, f"Base {i}", tags=[rng.choice(["a", "b", "c"])]) for i, s in enumerate(signers * 2)]
        base_events = [verify_envelope(e, limits=Limits(), now_ms=2**52) for e in base]
        await store.write_batch(base_events)
        ids = [e.id for e in base_events]
        filters = []
        for _ in range(40):
            f: dict[str, Any] = {}
            for name, pool in (("authors", [s.did for s in signers]), ("kinds", ["proposal", "rating"]),
                               ("tags", ["a", "b", "c"]), ("refs", ids[:3]), ("ids", ids)):
                if rng.random() < 0.35:
                    f[name] = rng.sample(pool, rng.randint(1, 2))
            filters.append(f)
        from forum.protocol.filters import parse_filter

        subs = []
        for i, f in enumerate(filters):
            sub = Subscription(Outbox(), f"s{i}", parse_filter(f))
            await hub.run_subscription(sub)
            subs.append(sub)
        new = []
        for i in range(60):
            s = rng.choice(signers)
            if rng.random() < 0.5:
                new.append(proposal(s, f"New {i}", tags=[rng.choice(["a", "b", "c"])]))
            else:
                target = rng.choice([e for e in base_events if e.author != s.did])
                new.append(rating(s, target.id, 0.5))
        events = [verify_envelope(e, limits=Limits(), now_ms=2**52) for e in new]
        results = await store.write_batch(events)
        stored = [Stored(r.seq, e) for r, e in zip(results, events, strict=True) if isinstance(r, Accepted)]
        hub.deliver(stored)
        for sub in subs:
            got = [orjson.loads(f)[2] for f, _ in sub.outbox.frames if f.startswith('["EVENT"')]
            want = [st.seq for st in stored if sub.filter.matches(st.event)]
            assert got == want, sub.filter
        await hub.stop()
    finally:
        await engine.dispose()


async def test_catch_ups_read_the_log_a_bounded_number_at_a_time(tmp_path: Path) -> None:
    """30 catch-ups from one address and 10 from another: at most 2 of one address and 3 in
    all are reading the log at any moment (max_catch_up_reads_per_address, max_catch_up_reads),
    and every one of them still gets every stored event."""
    from forum.hub import AddressBudget

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/f.db")
    await migrate(engine)
    store = Store(engine)
    s = Signer()
    events = [verify_envelope(proposal(s, f"E{i}"), limits=Limits(), now_ms=2**52) for i in range(60)]
    await store.write_batch(events)
    hub = Hub(store, Metrics(), queue_bytes=10_000_000, catch_up_reads=3)
    await hub.start()
    reading: dict[str, int] = {"a": 0, "b": 0, "all": 0}
    most: dict[str, int] = {"a": 0, "b": 0, "all": 0}
    real_envelopes = store.envelopes
    owner: dict[int, str] = {}

    async def counted(f: Filter, **kw: Any) -> list[tuple[int, str]]:  # the real read, counted
        who = owner[id(f)]
        for k in (who, "all"):
            reading[k] += 1
            most[k] = max(most[k], reading[k])
        try:
            await asyncio.sleep(0.005)  # a read that takes a while, so that they would overlap
            return await real_envelopes(f, **kw)
        finally:
            for k in (who, "all"):
                reading[k] -= 1

    store.envelopes = counted  # type: ignore[method-assign]
    budgets = {"a": AddressBudget(0, reads=2), "b": AddressBudget(0, reads=2)}
    subs = []
    for i in range(40):
        who = "a" if i < 30 else "b"
        f = Filter(kinds=("proposal",), after_seq=0)
        owner[id(f)] = who
        subs.append(Subscription(Outbox(address=budgets[who]), f"s{i}", f))
    await asyncio.gather(*(hub.run_subscription(sub) for sub in subs))
    assert most["a"] == 2 and most["b"] == 2 and most["all"] == 3
    for sub in subs:
        seqs = [orjson.loads(frame)[2] for frame, _ in sub.outbox.frames if frame.startswith('["EVENT"')]
        assert seqs == list(range(1, 61))
    await hub.stop()
    await engine.dispose()
