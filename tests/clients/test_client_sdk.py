"""The SDK against a scripted peer: exact frames, reconnects, resumption, refusals, forgeries."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from clients import builders
from clients.errors import ClientClosed, ConnectError, Refused, VerificationFailed
from clients.keys import derive_key
from clients.sdk import Backoff, Client
from forum.errors import ProtocolError
from tests.clients.fakeforum import FakeConnection, FakeForum
from tests.support.timeouts import timeout

KEY = derive_key("tests", "sdk")
FAST = Backoff(initial=0.01, maximum=0.05)


def _events(n: int, start: int = 0) -> list[builders.SignedEvent]:
    return [
        builders.agent(KEY, name=f"agent {i}", about="x", created_at=1_000 + i)
        for i in range(start, start + n)
    ]


@pytest.fixture
async def forum() -> AsyncIterator[FakeForum]:
    async with FakeForum() as f:
        yield f


@pytest.fixture
async def client(forum: FakeForum) -> AsyncIterator[Client]:
    async with Client(forum.url, backoff=FAST) as c:
        yield c


async def _conn(forum: FakeForum) -> FakeConnection:
    return await forum.accept()


# --------------------------------------------------------------------------- publish


async def test_publish_returns_when_the_ok_arrives(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    task = asyncio.create_task(client.publish(signed))
    frame = await conn.recv()
    assert frame == ["PUBLISH", signed.envelope]
    await asyncio.sleep(0.01)
    assert not task.done()
    await conn.send("OK", signed.id, True, "")
    result = await asyncio.wait_for(task, timeout(2))
    assert (
        result.accepted
        and not result.duplicate
        and result.id == signed.id
        and result.reason is None
    )


async def test_a_duplicate_is_a_success(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    task = asyncio.create_task(client.publish(signed))
    await conn.recv()
    await conn.send("OK", signed.id, True, "duplicate: already stored at seq 4")
    result = await asyncio.wait_for(task, timeout(2))
    assert result.duplicate and result.reason == "duplicate"


async def test_a_refusal_raises_refused_with_the_reason(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    task = asyncio.create_task(client.publish(signed))
    await conn.recv()
    await conn.send(
        "OK", signed.id, False, "rate-limited: author over its rate limit, retry in 0.50s"
    )
    with pytest.raises(Refused) as err:
        await asyncio.wait_for(task, timeout(2))
    assert err.value.reason == "rate-limited"
    assert err.value.detail == "author over its rate limit, retry in 0.50s"
    assert err.value.event_id == signed.id
    assert isinstance(err.value, ProtocolError)


async def test_an_unknown_reason_is_reported_as_error(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    task = asyncio.create_task(client.publish(signed))
    await conn.recv()
    await conn.send("OK", signed.id, False, "weird: new reason")
    with pytest.raises(Refused) as err:
        await asyncio.wait_for(task, timeout(2))
    assert err.value.reason == "error" and err.value.detail == "weird: new reason"


async def test_an_invalid_envelope_is_refused_locally_with_the_forum_error(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    tampered = {"payload": signed.payload.replace("agent 0", "agent X"), "sig": signed.sig}
    with pytest.raises(ProtocolError) as err:
        await client.publish(tampered)
    assert err.value.message == "invalid: signature does not verify for the author's key"
    with pytest.raises(ProtocolError, match="exactly the keys"):
        await client.publish({"payload": signed.payload})
    assert conn.frames.empty()


async def test_publish_many_is_pipelined_and_keeps_order(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    events = _events(20)
    task = asyncio.create_task(client.publish_many(events))
    frames = [await conn.recv() for _ in events]  # all sent before any OK
    assert [f[1] for f in frames] == [e.envelope for e in events]
    for e in reversed(events):
        accepted = e is not events[3]
        await conn.send("OK", e.id, accepted, "" if accepted else "invalid: no")
    results = await asyncio.wait_for(task, timeout(2))
    assert [r.id for r in results] == [e.id for e in events]
    assert [r.accepted for r in results] == [e is not events[3] for e in events]
    with pytest.raises(Refused):
        results[3].raise_for_refusal()


async def test_publishing_the_same_event_twice_concurrently_sends_it_once(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    both = asyncio.gather(client.publish(signed), client.publish(signed))
    await conn.recv()
    await conn.send("OK", signed.id, True, "")
    a, b = await asyncio.wait_for(both, timeout(2))
    assert a == b
    assert conn.frames.empty()


async def test_unacknowledged_publishes_are_resent_after_a_reconnect(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    events = _events(3)
    task = asyncio.create_task(client.publish_many(events))
    for _ in events:
        await conn.recv()
    await conn.send("OK", events[0].id, True, "")  # only the first is acknowledged
    await asyncio.sleep(0.05)
    await conn.drop()
    again = await _conn(forum)
    resent = [await again.recv(), await again.recv()]
    assert [f[1] for f in resent] == [events[1].envelope, events[2].envelope]
    await again.send("OK", events[1].id, True, "duplicate: stored before the drop")
    await again.send("OK", events[2].id, True, "")
    results = await asyncio.wait_for(task, timeout(5))
    assert all(r.accepted for r in results)
    assert client.reconnects == 1


async def test_a_publish_made_while_disconnected_is_sent_on_reconnect(forum: FakeForum) -> None:
    async with Client(forum.url, backoff=FAST) as client:
        conn = await _conn(forum)
        await forum.stop()
        await conn.drop()
        await asyncio.sleep(0.05)
        assert not client.connected
        signed = _events(1)[0]
        task = asyncio.create_task(client.publish(signed))
        await asyncio.sleep(0.1)
        await forum.start()  # same port
        again = await _conn(forum)
        assert await again.recv() == ["PUBLISH", signed.envelope]
        await again.send("OK", signed.id, True, "")
        assert (await asyncio.wait_for(task, timeout(5))).accepted


async def test_close_fails_waiting_publishes(forum: FakeForum) -> None:
    client = Client(forum.url, backoff=FAST)
    await client.connect()
    conn = await _conn(forum)
    task = asyncio.create_task(client.publish(_events(1)[0]))
    await conn.recv()
    await client.close()
    with pytest.raises(ClientClosed):
        await task
    with pytest.raises(ClientClosed):
        await client.publish(_events(1)[0])


async def test_connect_error_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError):
        async with Client(f"ws://127.0.0.1:{port}/ws"):
            pass


def test_a_bad_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="WebSocket URL"):
        Client("http://example.org/ws")


# --------------------------------------------------------------------------- subscribe


async def _serve_events(
    conn: FakeConnection, wire_id: str, events: list[tuple[int, builders.SignedEvent]]
) -> None:
    for seq, e in events:
        await conn.send("EVENT", wire_id, seq, e.envelope)


async def test_subscribe_yields_verified_events_and_sets_live(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    events = _events(3)
    sub = client.subscribe({"kinds": ["agent"], "after_seq": 0}, sub_id="mine")
    first = asyncio.create_task(anext(sub))
    assert await conn.recv() == ["SUBSCRIBE", "mine", {"kinds": ["agent"], "after_seq": 0}]
    await _serve_events(conn, "mine", list(zip([1, 2], events[:2], strict=True)))
    await conn.send("LIVE", "mine", 7)
    await conn.send("EVENT", "mine", 9, events[2].envelope)
    seq, event = await asyncio.wait_for(first, timeout(2))
    assert (seq, event.id, event.kind) == (1, events[0].id, "agent")
    assert not sub.live.is_set()
    assert (await anext(sub))[0] == 2
    assert (await anext(sub))[0] == 9
    assert sub.live.is_set() and sub.last_seq == 9


async def test_a_resubscription_after_a_drop_resumes_after_the_last_seq(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    events = _events(6)
    sub = client.subscribe({"after_seq": 0}, sub_id="log")
    got: list[int] = []

    async def consume() -> None:
        async for seq, _ in sub:
            got.append(seq)
            if len(got) == 5:
                return

    task = asyncio.create_task(consume())
    await conn.recv_kind("SUBSCRIBE")
    await _serve_events(conn, "log", list(zip([1, 2, 3], events[:3], strict=True)))
    await asyncio.sleep(0.05)
    await conn.drop()
    again = await _conn(forum)
    frame = await again.recv_kind("SUBSCRIBE")
    assert frame == ["SUBSCRIBE", "log~2", {"after_seq": 3}]
    # A server resending an old event must not make it a duplicate.
    await _serve_events(again, "log~2", [(3, events[2]), (4, events[3])])
    await again.send("LIVE", "log~2", 4)
    await again.send("EVENT", "log", 99, events[5].envelope)  # stale wire id: ignored
    await _serve_events(again, "log~2", [(6, events[4])])
    await asyncio.wait_for(task, timeout(5))
    assert got == [1, 2, 3, 4, 6]


async def test_resume_uses_live_last_seq_when_no_event_matched(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    sub = client.subscribe({"kinds": ["outcome"]}, sub_id="o")
    task = asyncio.create_task(anext(sub))
    assert (await conn.recv())[2] == {"kinds": ["outcome"]}
    await conn.send("LIVE", "o", 41)
    await asyncio.sleep(0.05)
    await conn.drop()
    again = await _conn(forum)
    assert (await again.recv_kind("SUBSCRIBE"))[2] == {"kinds": ["outcome"], "after_seq": 41}
    task.cancel()


async def test_closed_as_too_slow_resubscribes_from_the_last_seq(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    events = _events(3)
    sub = client.subscribe({"after_seq": 0}, sub_id="s")
    task = asyncio.create_task(anext(sub))
    await conn.recv_kind("SUBSCRIBE")
    await conn.send("EVENT", "s", 1, events[0].envelope)
    await conn.send("CLOSED", "s", "error: subscriber too slow: 5000 frames queued; resubscribe")
    assert (await asyncio.wait_for(task, timeout(2)))[0] == 1
    task = asyncio.create_task(anext(sub))
    assert await conn.recv_kind("SUBSCRIBE") == ["SUBSCRIBE", "s~2", {"after_seq": 1}]
    await conn.send("EVENT", "s~2", 2, events[1].envelope)
    assert (await asyncio.wait_for(task, timeout(2)))[0] == 2


async def test_a_permanent_closed_ends_the_subscription_with_refused(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    sub = client.subscribe({}, sub_id="bad")
    task = asyncio.create_task(anext(sub))
    await conn.recv_kind("SUBSCRIBE")
    await conn.send("CLOSED", "bad", "blocked: at most 32 subscriptions per connection")
    with pytest.raises(Refused) as err:
        await asyncio.wait_for(task, timeout(2))
    assert err.value.reason == "blocked"
    assert sub.closed
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_repeated_transient_closes_give_up(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    sub = client.subscribe({}, sub_id="flaky")
    task = asyncio.create_task(anext(sub))
    wire_ids = []
    for _ in range(6):  # the first subscription and 5 retries
        frame = await conn.recv_kind("SUBSCRIBE")
        wire_ids.append(frame[1])
        await conn.send("CLOSED", frame[1], "error: the subscription failed on the server")
    with pytest.raises(Refused):
        await asyncio.wait_for(task, timeout(5))
    assert wire_ids == ["flaky", "flaky~2", "flaky~3", "flaky~4", "flaky~5", "flaky~6"]


async def test_a_forged_event_raises_verification_failed_and_iteration_continues(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    good, victim = _events(2)
    forged = {"payload": victim.payload.replace("agent 1", "agent evil"), "sig": victim.sig}
    sub = client.subscribe({"after_seq": 0}, sub_id="v")
    task = asyncio.create_task(anext(sub))
    await conn.recv_kind("SUBSCRIBE")
    await conn.send("EVENT", "v", 1, forged)
    await conn.send("EVENT", "v", 2, good.envelope)
    with pytest.raises(VerificationFailed) as err:
        await asyncio.wait_for(task, timeout(2))
    assert err.value.seq == 1 and err.value.error.reason == "invalid"
    assert (await asyncio.wait_for(anext(sub), timeout(2)))[0] == 2


async def test_without_verification_a_forged_signature_passes(forum: FakeForum) -> None:
    async with Client(forum.url, verify=False) as client:
        conn = await _conn(forum)
        victim = _events(1)[0]
        forged = {"payload": victim.payload, "sig": "A" * 86}
        sub = client.subscribe({"after_seq": 0})
        task = asyncio.create_task(anext(sub))
        wire = (await conn.recv_kind("SUBSCRIBE"))[1]
        await conn.send("EVENT", wire, 1, forged)
        assert (await asyncio.wait_for(task, timeout(2)))[1].id == victim.id


async def test_a_full_buffer_unsubscribes_and_resumes_once_drained(forum: FakeForum) -> None:
    async with Client(forum.url, backoff=FAST, max_buffer=3) as client:
        conn = await _conn(forum)
        events = _events(6)
        sub = client.subscribe({"after_seq": 0}, sub_id="b")
        task = asyncio.create_task(anext(sub))
        await conn.recv_kind("SUBSCRIBE")
        await _serve_events(conn, "b", list(zip(range(1, 7), events, strict=True)))
        assert (await asyncio.wait_for(task, timeout(2)))[0] == 1
        assert await conn.recv_kind("UNSUBSCRIBE") == ["UNSUBSCRIBE", "b"]
        seqs = [(await anext(sub))[0] for _ in range(2)]  # 2, 3 were buffered, 4.. were dropped
        assert seqs == [2, 3]
        task = asyncio.create_task(anext(sub))
        assert await conn.recv_kind("SUBSCRIBE") == ["SUBSCRIBE", "b~2", {"after_seq": 3}]
        await conn.send("EVENT", "b~2", 4, events[3].envelope)
        assert (await asyncio.wait_for(task, timeout(2)))[0] == 4


async def test_until_live_and_query_return_the_stored_events(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    events = _events(2)
    task = asyncio.create_task(client.query({"kinds": ["agent"], "limit": 10}))
    frame = await conn.recv_kind("SUBSCRIBE")
    await _serve_events(conn, frame[1], [(5, events[0]), (8, events[1])])
    await conn.send("LIVE", frame[1], 8)
    result = await asyncio.wait_for(task, timeout(2))
    assert [(s, e.id) for s, e in result] == [(5, events[0].id), (8, events[1].id)]
    assert await conn.recv_kind("UNSUBSCRIBE") == ["UNSUBSCRIBE", frame[1]]


async def test_aclose_unsubscribes(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    async with client.subscribe({}, sub_id="x") as sub:
        task = asyncio.create_task(anext(sub))
        await conn.recv_kind("SUBSCRIBE")
        task.cancel()
    assert await conn.recv_kind("UNSUBSCRIBE") == ["UNSUBSCRIBE", "x"]
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_closing_the_client_ends_subscriptions(forum: FakeForum) -> None:
    client = Client(forum.url)
    await client.connect()
    conn = await _conn(forum)
    sub = client.subscribe({})
    task = asyncio.create_task(anext(sub))
    await conn.recv_kind("SUBSCRIBE")
    await client.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(task, timeout(2))


def test_filters_and_sub_ids_are_checked_like_the_forum_does() -> None:
    client = Client("ws://127.0.0.1:1/ws")
    with pytest.raises(ProtocolError, match="unknown field 'kind'"):
        client.subscribe({"kind": ["agent"]})
    with pytest.raises(ProtocolError, match="malformed entry"):
        client.subscribe({"kinds": ["nope"]})
    with pytest.raises(ValueError, match="sub_id"):
        client.subscribe({}, sub_id="has space")
    client.subscribe({}, sub_id="one")
    with pytest.raises(ValueError, match="already in use"):
        client.subscribe({}, sub_id="one")
    with pytest.raises(ProtocolError):
        client.subscribe_scores(["not-a-target"])


async def test_malformed_frames_are_ignored(forum: FakeForum, client: Client) -> None:
    conn = await _conn(forum)
    signed = _events(1)[0]
    task = asyncio.create_task(client.publish(signed))
    await conn.recv()
    await conn.send_raw("not json")
    await conn.send_raw('{"an": "object"}')
    await conn.send("OK")
    await conn.send("EVENT", "nobody", "x", {})
    await conn.send("NOTICE", "invalid: something")
    await conn.send("FUTURE", 1, 2)
    await conn.send("OK", signed.id, True, "")
    assert (await asyncio.wait_for(task, timeout(2))).accepted


# --------------------------------------------------------------------------- scores


async def test_score_subscriptions_pass_dicts_through_and_renew_after_a_drop(
    forum: FakeForum, client: Client
) -> None:
    conn = await _conn(forum)
    target = "b" * 64
    sub = client.subscribe_scores([target], sub_id="sc")
    task = asyncio.create_task(anext(sub))
    assert await conn.recv_kind("SUBSCRIBE") == ["SUBSCRIBE", "sc", {"scores": [target]}]
    update = {"target": target, "bridging": 0.4, "n": 12}
    await conn.send("SCORES", "sc", update)
    assert await asyncio.wait_for(task, timeout(2)) == update
    task = asyncio.create_task(anext(sub))
    await conn.drop()
    again = await _conn(forum)
    assert await again.recv_kind("SUBSCRIBE") == ["SUBSCRIBE", "sc~2", {"scores": [target]}]
    await again.send("LIVE", "sc~2", 0)
    await again.send("SCORES", "sc~2", {"target": target, "bridging": 0.5})
    assert (await asyncio.wait_for(task, timeout(2)))["bridging"] == 0.5
    assert sub.live.is_set()


def test_backoff_is_capped_with_jitter() -> None:
    b = Backoff(initial=0.1, factor=2, maximum=1.0)
    for attempt in range(100):
        d = b.delay(attempt)
        cap = min(1.0, 0.1 * 2**attempt)
        assert cap / 2 <= d <= cap
