"""The SDK against the real forum (``python -m forum`` in a subprocess), plus its frame handling sans I/O.

One forum serves the whole module, started with small limits so that its
refusals happen for real: an author may publish 30 events (then
``rate-limited``), a connection may hold 3 subscriptions (then ``blocked``),
and a subscription with 4 KiB queued is closed as too slow. Every test
publishes with its own key and subscribes to its own author, so the tests do
not see each other's events. Server-side effects the client cannot report
(pipelining, a frame never sent) are read from the forum's ``/metrics``.

Forged events and persistently failing subscriptions come from the real
forum too, with its database tampered with, as on a compromised or damaged
forum (signatures exist for exactly that case). Frames no forum sends
(garbage, unknown reasons, stale ids) are fed to ``Client._handle_frame``,
the sans-I/O function the connection loop calls for every incoming frame.
Kill -9 and restart: at the end, on a forum of their own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.sdk import builders
from clients.sdk.client import Backoff, Client
from clients.sdk.errors import ClientClosed, ConnectError, Refused, VerificationFailed
from clients.sdk.keys import Key, derive_key
from clients.sdk.streams import Subscription
from forum.protocol.errors import ProtocolError
from tests.clients.conftest import tamper_event
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

FAST = Backoff(initial=0.01, maximum=0.05)
AUTHOR_BURST = 30
MAX_SUBSCRIPTIONS = 3
QUEUE_BYTES = 4096


@pytest.fixture(scope="module")
def forum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForumProcess]:
    server = ForumProcess(
        tmp_path_factory.mktemp("forum"),
        author_rate=0.001,  # a token every 1000 s: the burst is all an author gets here
        author_burst=AUTHOR_BURST,
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
        subscriber_queue_bytes=QUEUE_BYTES,
    ).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def client(forum: ForumProcess) -> AsyncIterator[Client]:
    async with Client(forum.ws_url, backoff=FAST) as c:
        yield c


@pytest.fixture
def key(request: pytest.FixtureRequest) -> Key:
    """A key of this test's own: its events and rate limit are its own on the shared forum."""
    return derive_key("tests", f"sdk {request.node.name}")


def _profiles(key: Key, n: int, start: int = 0) -> list[builders.SignedEvent]:
    return [
        builders.agent(key, name=f"agent {i}", about="x", created_at=1_000 + i)
        for i in range(start, start + n)
    ]


def _mine(key: Key, **more: object) -> dict[str, object]:
    """A filter for the events of ``key`` only (other tests publish on the same forum)."""
    return {"authors": [key.did], **more}


async def _metric(server: ForumProcess, sample: str, **labels: str) -> float:
    """One sample of the forum's Prometheus metrics (0 when it has not been created yet)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout(10)) as http:
        text = (await http.get("/metrics")).raise_for_status().text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return s.value
    return 0.0


async def _post_batch(server: ForumProcess, events: list[builders.SignedEvent]) -> None:
    """Publish through POST /api/v1/events:batch: the forum commits them as one batch."""
    body = b"\n".join(orjson.dumps(e.envelope) for e in events)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout(20)) as http:
        results = (await http.post("/api/v1/events:batch", content=body)).json()["results"]
    assert [r["accepted"] for r in results] == [True] * len(events), results


def _tamper(server: ForumProcess, event_id: str, column: str, value: str) -> None:
    tamper_event(Path(server.env["FORUM_DATA_DIR"]) / "forum.db", event_id, column, value)


async def _wait_for(predicate: Callable[[], bool], n: float) -> None:
    """Poll state that other tasks own (a cursor moved by the client's reader)."""
    async with asyncio.timeout(timeout(n)):
        while not predicate():  # noqa: ASYNC110 - nothing to await: plain attributes
            await asyncio.sleep(0.01)


async def _take(sub: Subscription, n: int, within: float = 10) -> list[tuple[int, str]]:
    async with asyncio.timeout(timeout(within)):
        return [(seq, event.id) for seq, event in [await anext(sub) for _ in range(n)]]


# --------------------------------------------------------------------------- no forum needed


def test_a_bad_url_is_a_value_error() -> None:
    for bad in ("ftp://example.org/ws", "example.org:8000", "http://", "ws:///ws"):
        with pytest.raises(ValueError, match="not a forum address"):
            Client(bad)


def test_the_address_forum_serve_prints_is_accepted() -> None:
    # `forum serve` prints http://host:port; the client derives its /ws endpoint.
    assert Client("http://example.org:8000").url == "ws://example.org:8000/ws"
    assert Client("https://example.org").url == "wss://example.org/ws"
    assert Client("ws://example.org:8000/ws").url == "ws://example.org:8000/ws"


async def test_connect_error_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError):
        async with Client(f"ws://127.0.0.1:{port}/ws"):
            pass


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


async def test_an_invalid_envelope_is_refused_locally_with_the_forum_error() -> None:
    # Never connected: had the client tried to send, publish would wait for a connection.
    client = Client("ws://127.0.0.1:1/ws")
    signed = _profiles(derive_key("tests", "local"), 1)[0]
    tampered = {"payload": signed.payload.replace("agent 0", "agent X"), "sig": signed.sig}
    async with asyncio.timeout(timeout(2)):
        with pytest.raises(ProtocolError) as err:
            await client.publish(tampered)
        assert err.value.message == "invalid: signature does not verify for the author's key"
        with pytest.raises(ProtocolError, match="exactly the keys"):
            await client.publish({"payload": signed.payload})
        with pytest.raises(ProtocolError):
            await client.publish_many([signed, tampered])  # checked before anything is queued
    await client.close()


async def test_close_fails_waiting_publishes() -> None:
    client = Client("ws://127.0.0.1:1/ws")  # never connected: the publish waits
    task = asyncio.create_task(client.publish(_profiles(derive_key("tests", "close"), 1)[0]))
    await asyncio.sleep(0.01)
    assert not task.done()
    await client.close()
    with pytest.raises(ClientClosed):
        await task
    with pytest.raises(ClientClosed):
        await client.publish(_profiles(derive_key("tests", "close"), 1)[0])


def test_backoff_is_capped_with_jitter() -> None:
    b = Backoff(initial=0.1, factor=2, maximum=1.0)
    for attempt in range(100):
        d = b.delay(attempt)
        cap = min(1.0, 0.1 * 2**attempt)
        assert cap / 2 <= d <= cap


# --------------------------------------------------------------------------- publish


async def test_publish_returns_once_the_event_is_stored_and_a_duplicate_is_a_success(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    signed = _profiles(key, 1)[0]
    result = await client.publish(signed)
    assert result.accepted and not result.duplicate and result.id == signed.id
    assert result.reason is None
    async with Client(forum.ws_url) as other:  # stored (committed) before the OK came back
        assert [e.id for _, e in await other.query({"ids": [signed.id]})] == [signed.id]
    again = await client.publish(signed)
    assert again.accepted and again.duplicate and again.reason == "duplicate"
    assert again.raise_for_refusal() is again


async def test_a_rate_limited_publish_raises_refused_with_the_forums_reason(
    client: Client, key: Key
) -> None:
    events = _profiles(key, AUTHOR_BURST + 1)
    results = await client.publish_many(events[:-1])
    assert all(r.accepted for r in results)
    with pytest.raises(Refused) as err:
        await client.publish(events[-1])
    assert err.value.reason == "rate-limited"
    assert err.value.detail.startswith("author over its rate limit, retry in ")
    assert err.value.event_id == events[-1].id
    assert isinstance(err.value, ProtocolError)


async def test_the_forum_refuses_a_tampered_envelope_with_the_local_error(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    signed = _profiles(key, 1)[0]
    tampered = {"payload": signed.payload.replace("agent 0", "agent X"), "sig": signed.sig}
    with pytest.raises(ProtocolError) as local:
        await client.publish(tampered)
    with pytest.raises(Refused) as remote:  # the local check bypassed: the forum's verdict
        await client.publish(tampered, check=False)
    assert remote.value.message == local.value.message
    assert remote.value.reason == "invalid"


async def test_publish_many_is_pipelined_keeps_order_and_reports_each_refusal(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    idea = builders.proposal(key, title="Tool library", text="Share tools.")
    await client.publish(idea)
    own_rating = builders.rating(key, target=idea.id, score=1)  # only the forum can tell
    events = _profiles(key, 19)
    events.insert(3, own_rating)
    batches = await _metric(forum, "mycelium_commit_batch_events_count")
    singles = await _metric(forum, "mycelium_commit_batch_events_bucket", le="1.0")
    results = await client.publish_many(events)
    assert [r.id for r in results] == [e.id for e in events]
    assert [r.accepted for r in results] == [e is not own_rating for e in events]
    assert results[3].reason == "invalid" and "own event" in results[3].message
    with pytest.raises(Refused):
        results[3].raise_for_refusal()
    # Sent one by one, each after the previous OK, every commit would hold one event.
    batches = await _metric(forum, "mycelium_commit_batch_events_count") - batches
    singles = await _metric(forum, "mycelium_commit_batch_events_bucket", le="1.0") - singles
    assert batches > singles, "no commit held more than one event: publishes were not pipelined"


async def test_publishing_the_same_event_twice_concurrently_sends_it_once(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    signed = _profiles(key, 1)[0]
    duplicates = await _metric(forum, "mycelium_events_duplicate_total")
    both = asyncio.gather(client.publish(signed), client.publish(signed))
    a, b = await asyncio.wait_for(both, timeout(5))
    assert a == b and a.accepted and not a.duplicate
    assert await _metric(forum, "mycelium_events_duplicate_total") == duplicates


# --------------------------------------------------------------------------- subscribe


async def test_subscribe_yields_verified_stored_events_then_live_ones(
    client: Client, key: Key
) -> None:
    events = _profiles(key, 3)
    stored = await client.publish_many(events[:2])
    sub = client.subscribe(_mine(key, kinds=["agent"], after_seq=0), sub_id="mine")
    seq, event = await asyncio.wait_for(anext(sub), timeout(5))
    assert (event.id, event.kind, event.author) == (events[0].id, "agent", key.did)
    assert not sub.live.is_set()  # LIVE comes after the stored events
    assert (await anext(sub))[1].id == events[1].id
    nxt = asyncio.create_task(anext(sub))
    await _wait_for(sub.live.is_set, 5)
    await client.publish(events[2])
    last, event = await asyncio.wait_for(nxt, timeout(5))
    assert event.id == events[2].id and last > seq and sub.last_seq == last
    assert all(r.accepted for r in stored)


async def test_query_and_aclose_unsubscribe_on_the_forum(client: Client, key: Key) -> None:
    # The forum holds at most MAX_SUBSCRIPTIONS per connection: without UNSUBSCRIBE,
    # the ones after that would be refused as blocked.
    events = _profiles(key, 2)
    await client.publish_many(events)
    for _ in range(MAX_SUBSCRIPTIONS + 2):
        found = await asyncio.wait_for(client.query(_mine(key, limit=10)), timeout(5))
        assert [e.id for _, e in found] == [e.id for e in events]
        assert [s for s, _ in found] == sorted(s for s, _ in found)
    after = found[0][0]  # one match after it: nothing else is buffered when we close
    for _ in range(MAX_SUBSCRIPTIONS + 2):
        async with client.subscribe(_mine(key, after_seq=after)) as sub:
            assert (await asyncio.wait_for(anext(sub), timeout(5)))[1].id == events[1].id
        assert sub.closed
        with pytest.raises(StopAsyncIteration):
            await anext(sub)


async def test_a_subscription_over_the_forums_limit_ends_with_refused(
    client: Client, key: Key
) -> None:
    await client.publish(_profiles(key, 1)[0])
    open_subs = [client.subscribe(_mine(key, after_seq=0)) for _ in range(MAX_SUBSCRIPTIONS)]
    for sub in open_subs:
        await asyncio.wait_for(anext(sub), timeout(5))  # the forum has it now
    extra = client.subscribe(_mine(key, after_seq=0), sub_id="extra")
    with pytest.raises(Refused) as err:
        await asyncio.wait_for(anext(extra), timeout(5))
    assert err.value.reason == "blocked" and "subscriptions per connection" in err.value.detail
    assert extra.closed
    with pytest.raises(StopAsyncIteration):
        await anext(extra)


async def test_closing_the_client_ends_subscriptions(forum: ForumProcess, key: Key) -> None:
    client = Client(forum.ws_url)
    await client.connect()
    sub = client.subscribe(_mine(key))
    task = asyncio.create_task(anext(sub))
    await _wait_for(lambda: sub.cursor is not None, 5)  # LIVE arrived: subscribed
    await client.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(task, timeout(2))


async def test_a_subscriber_closed_as_too_slow_resumes_from_its_last_seq(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    events = _profiles(key, 25)
    sub = client.subscribe(_mine(key), sub_id="slow")
    first = asyncio.create_task(anext(sub))
    await _wait_for(lambda: sub.cursor is not None, 5)  # live
    closed = await _metric(forum, "mycelium_slow_subscriptions_closed_total")
    # One commit of 25 matches queues more frames than the forum lets a subscriber have.
    await _post_batch(forum, events)
    got = [(s, e.id) for s, e in [await asyncio.wait_for(first, timeout(5))]]
    got += await _take(sub, len(events) - 1)
    assert await _metric(forum, "mycelium_slow_subscriptions_closed_total") == closed + 1
    assert [eid for _, eid in got] == [e.id for e in events]  # every one, exactly once
    assert [s for s, _ in got] == sorted({s for s, _ in got})
    assert client.reconnects == 0


async def test_a_full_buffer_unsubscribes_and_resumes_once_drained(
    forum: ForumProcess, key: Key
) -> None:
    events = _profiles(key, 6)
    async with Client(forum.ws_url, backoff=FAST, max_buffer=3) as client:
        sub = client.subscribe(_mine(key, kinds=["agent"]), sub_id="b")
        first = asyncio.create_task(anext(sub))
        await _wait_for(lambda: sub.cursor is not None, 5)  # live
        await _post_batch(forum, events)  # one commit: seqs first .. first + 5
        # The OK of a publish on this connection comes after the 6 EVENT frames.
        await client.publish(builders.proposal(key, title="Barrier", text="Not an agent."))
        got = [await asyncio.wait_for(first, timeout(5))]
        assert sub.cursor is not None and sub.cursor < got[0][0] + 5  # not all 6 were kept
        got += [await asyncio.wait_for(anext(sub), timeout(5)) for _ in range(5)]
    assert [e.id for _, e in got] == [e.id for e in events]
    assert [s for s, _ in got] == sorted({s for s, _ in got})


async def test_a_forged_event_raises_verification_failed_and_iteration_continues(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    victim, good = _profiles(key, 2)
    await client.publish_many([victim, good])
    _tamper(forum, victim.id, "payload", victim.payload.replace("agent 0", "agent evil"))
    sub = client.subscribe(_mine(key, after_seq=0))
    with pytest.raises(VerificationFailed) as err:
        await asyncio.wait_for(anext(sub), timeout(5))
    assert err.value.error.reason == "invalid"
    assert "agent evil" in err.value.envelope["payload"]
    seq, event = await asyncio.wait_for(anext(sub), timeout(5))
    assert event.id == good.id and seq > err.value.seq


async def test_without_verification_a_forged_signature_passes(
    forum: ForumProcess, key: Key
) -> None:
    victim = _profiles(key, 1)[0]
    async with Client(forum.ws_url, verify=False) as client:
        await client.publish(victim)
        _tamper(forum, victim.id, "sig", "A" * 86)
        ((_, event),) = await client.query(_mine(key, after_seq=0))
        assert event.id == victim.id and event.sig == "A" * 86


async def test_repeated_transient_closes_give_up(
    forum: ForumProcess, client: Client, key: Key
) -> None:
    # A stored payload that no longer parses makes every catch-up through it fail on
    # the forum, which closes the subscription with "error: ... resubscribe".
    broken = _profiles(key, 1)[0]
    await client.publish(broken)
    _tamper(forum, broken.id, "payload", "{not json")
    sub = client.subscribe(_mine(key, after_seq=0))
    with pytest.raises(Refused) as err:
        await asyncio.wait_for(anext(sub), timeout(10))
    assert err.value.reason == "error" and "the subscription failed" in err.value.detail
    assert sub.closed


# --------------------------------------------------------------------------- sans I/O
# Frames no forum sends, fed to the function the connection loop calls for each frame.


def _subscribed(client: Client, wire_id: str, after_seq: int = 0) -> Subscription:
    """A subscription as if its SUBSCRIBE had gone out under ``wire_id`` (no connection)."""
    sub = client.subscribe({"after_seq": after_seq}, sub_id=wire_id.split("~")[0])
    client._register(sub, wire_id)
    return sub


def _frame(*parts: object) -> str:
    return orjson.dumps(list(parts)).decode()


async def test_malformed_frames_are_ignored() -> None:
    client = Client("ws://127.0.0.1:1/ws")
    signed = _profiles(derive_key("tests", "malformed"), 1)[0]
    task = asyncio.create_task(client.publish(signed))
    await asyncio.sleep(0.01)
    for junk in ["not json", '{"an": "object"}', "[]", _frame("OK"), _frame("FUTURE", 1, 2)]:
        assert client._handle_frame(junk) is None
    assert client._handle_frame(_frame("EVENT", "nobody", "x", {})) is None
    assert client._handle_frame(_frame("NOTICE", "invalid: something")) is None
    assert not task.done()
    assert client._handle_frame(_frame("OK", signed.id, True, "").encode()) is None
    assert (await asyncio.wait_for(task, timeout(2))).accepted
    await client.close()


async def test_an_unknown_refusal_reason_is_reported_as_error() -> None:
    client = Client("ws://127.0.0.1:1/ws")
    signed = _profiles(derive_key("tests", "unknown reason"), 1)[0]
    task = asyncio.create_task(client.publish(signed))
    await asyncio.sleep(0.01)
    client._handle_frame(_frame("OK", signed.id, False, "weird: new reason"))
    with pytest.raises(Refused) as err:
        await asyncio.wait_for(task, timeout(2))
    assert err.value.reason == "error" and err.value.detail == "weird: new reason"
    await client.close()


async def test_old_seqs_and_unknown_wire_ids_are_dropped() -> None:
    client = Client("ws://127.0.0.1:1/ws")
    events = _profiles(derive_key("tests", "stale"), 5)
    sub = _subscribed(client, "log~2", after_seq=2)
    frames = [
        ("log~2", 2, events[0]),  # at the cursor: sent before, a duplicate
        ("log~2", 3, events[1]),
        ("log", 4, events[2]),  # the wire id of an abandoned subscription
        ("log~2", 3, events[1]),  # re-sent
        ("log~2", 5, events[3]),
        ("log~2", "6", events[4]),  # not a seq
    ]
    for wire_id, seq, e in frames:
        assert client._handle_frame(_frame("EVENT", wire_id, seq, e.envelope)) is None
    assert client._handle_frame(_frame("LIVE", "log~2", 5)) is None
    got = [await anext(sub), await anext(sub)]
    assert [(s, e.id) for s, e in got] == [(3, events[1].id), (5, events[3].id)]
    assert sub.cursor == 5
    await client.close()


async def test_a_full_buffer_answers_with_unsubscribe() -> None:
    client = Client("ws://127.0.0.1:1/ws", max_buffer=2)
    events = _profiles(derive_key("tests", "overflow"), 3)
    _subscribed(client, "b")
    replies = [
        client._handle_frame(_frame("EVENT", "b", i + 1, e.envelope)) for i, e in enumerate(events)
    ]
    assert replies == [None, None, _frame("UNSUBSCRIBE", "b")]
    assert client._handle_frame(_frame("EVENT", "b", 4, events[0].envelope)) is None  # ignored
    await client.close()


# --------------------------------------------------------------------------- kill -9


@pytest.mark.slow
async def test_after_a_kill_9_unacknowledged_publishes_are_resent_and_streams_resume(
    tmp_path: Path,
) -> None:
    server = ForumProcess(tmp_path / "forum", author_rate=0).start()
    alice, bob, carol, dave = (
        derive_key("tests", f"kill {name}") for name in ("alice", "bob", "carol", "dave")
    )
    try:
        async with (
            asyncio.timeout(timeout(90)),
            Client(server.ws_url, backoff=FAST) as publisher,
            Client(server.ws_url, backoff=FAST) as watcher,
        ):
            idea = builders.proposal(alice, title="Tool library", text="Share tools.")
            await publisher.publish_many([idea, builders.rating(bob, target=idea.id, score=0.5)])
            # A score subscription, and one that has seen no match: only LIVE's seq to resume from.
            scores = watcher.subscribe_scores([idea.id])
            first = await asyncio.wait_for(anext(scores), timeout(10))
            assert (first["target"], first["count"]) == (idea.id, 1)
            profiles = watcher.subscribe(_mine(dave, limit=1))
            waiting = asyncio.create_task(anext(profiles))
            await _wait_for(lambda: profiles.cursor is not None, 5)
            waiting.cancel()

            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGSTOP)  # no OK can come back now
            unacked = _profiles(carol, 3)
            publishing = asyncio.create_task(publisher.publish_many(unacked))
            await asyncio.sleep(0.2)
            assert not publishing.done()
            await asyncio.to_thread(server.kill)
            await _wait_for(lambda: not (publisher.connected or watcher.connected), 10)
            await asyncio.to_thread(server.restart_on_same_port)

            results = await asyncio.wait_for(publishing, timeout(20))
            assert [(r.id, r.accepted) for r in results] == [(e.id, True) for e in unacked]
            stored = await publisher.query({"authors": [carol.did], "after_seq": 0})
            assert [e.id for _, e in stored] == [e.id for e in unacked]

            # Published before the watcher resubscribes: a resubscription without
            # after_seq would get the newest one only (limit 1).
            later = _profiles(dave, 3)
            await publisher.publish_many(later)
            assert [eid for _, eid in await _take(profiles, 3)] == [e.id for e in later]

            await publisher.publish(builders.rating(carol, target=idea.id, score=-0.5))
            async with asyncio.timeout(timeout(20)):
                while (update := await anext(scores))["count"] < 2:  # the renewed subscription
                    pass
            assert update["target"] == idea.id and update["count"] == 2
            assert publisher.reconnects >= 1 and watcher.reconnects >= 1
    finally:
        server.kill()
