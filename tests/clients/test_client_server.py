"""The SDK against the real server (``forum serve`` in a subprocess): restarts and kill -9.

Subscriptions must resume across a restart with no gap and no duplicate, and a
publish that was not acknowledged when the server died must be re-sent and
acknowledged after it comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from clients.sdk import builders
from clients.sdk.client import Backoff, Client
from clients.sdk.errors import Refused
from clients.sdk.keys import derive_key
from clients.sdk.streams import Subscription
from tests.clients.conftest import ServeProcess
from tests.support.timeouts import timeout

pytestmark = pytest.mark.slow

ALICE = derive_key("tests", "alice")
BOB = derive_key("tests", "bob")
QUICK = Backoff(initial=0.05, maximum=0.5)


def _proposals(n: int, start: int = 0) -> list[builders.SignedEvent]:
    return [
        builders.proposal(
            ALICE,
            title=f"Idea {i}",
            text="Share tools.",
            tags=["commons"],
            created_at=1_700_000_000_000 + i,
        )
        for i in range(start, start + n)
    ]


async def _collect(sub: Subscription, want: int, out: list[tuple[int, str]]) -> None:
    async for seq, event in sub:
        out.append((seq, event.id))
        if len(out) >= want:
            return


async def _wait_for(predicate: Callable[[], bool], n: float) -> None:
    """Poll state that other components own (connection state, consumer progress)."""
    async with asyncio.timeout(timeout(n)):
        while not predicate():  # noqa: ASYNC110 - nothing to await: these are plain attributes
            await asyncio.sleep(0.01)


async def test_publish_and_subscribe_end_to_end(forum_serve: ServeProcess) -> None:
    async with asyncio.timeout(timeout(20)), Client(forum_serve.ws_url) as client:
        profile = builders.agent(ALICE, name="Alice", about="Test agent")
        idea = builders.proposal(ALICE, title="Tool library", text="Share tools.", tags=["tools"])
        first = await client.publish(profile)
        assert first.accepted and not first.duplicate
        assert (await client.publish(profile)).duplicate
        await client.publish(idea)
        with pytest.raises(Refused) as err:
            await client.publish(builders.rating(ALICE, target=idea.id, score=1))
        assert err.value.reason == "invalid" and "own event" in err.value.detail
        rating = builders.rating(BOB, target=idea.id, score=0.5, criteria={"feasible": 1})
        await client.publish(rating)

        sub = client.subscribe({"after_seq": 0})
        stored = [await anext(sub) for _ in range(3)]
        assert [e.id for _, e in stored] == [profile.id, idea.id, rating.id]
        assert [s for s, _ in stored] == sorted(s for s, _ in stored)
        late = builders.rating(BOB, target=ALICE.did, score=0.25)
        nxt = asyncio.create_task(anext(sub))
        await _wait_for(sub.live.is_set, 5)
        await client.publish(late)
        seq, event = await nxt
        assert event.id == late.id and seq > stored[-1][0]
        assert event.refs == (ALICE.did,)

        tagged = await client.query({"tags": ["tools"]})
        assert [e.id for _, e in tagged] == [idea.id]


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_subscription_resumes_across_a_restart_without_gaps_or_duplicates(
    tmp_path: Path, database_url: str, how: str
) -> None:
    server = ServeProcess(tmp_path / "forum", database_url).start()
    try:
        before, after = _proposals(30), _proposals(30, start=30)
        async with asyncio.timeout(timeout(90)):
            async with Client(server.ws_url, backoff=QUICK) as publisher:
                await publisher.publish_many(before)
            async with Client(server.ws_url, backoff=QUICK) as watcher:
                seen: list[tuple[int, str]] = []
                sub = watcher.subscribe({"kinds": ["proposal"], "after_seq": 0})
                task = asyncio.create_task(_collect(sub, 60, seen))
                await _wait_for(lambda: sub.live.is_set() and len(seen) == 30, 10)
                # In threads, so the clients keep running while the server stops and starts.
                await asyncio.to_thread(server.kill if how == "kill" else server.stop)
                await _wait_for(lambda: not watcher.connected, 10)
                await asyncio.to_thread(server.start)  # same port, same database
                async with Client(server.ws_url, backoff=QUICK) as publisher:
                    results = await publisher.publish_many(after)
                assert all(r.accepted and not r.duplicate for r in results)
                await asyncio.wait_for(task, timeout(20))
        assert [eid for _, eid in seen] == [e.id for e in before + after]
        seqs = [s for s, _ in seen]
        assert seqs == sorted(set(seqs))
        assert watcher.reconnects >= 1
    finally:
        server.kill()


async def test_kill_9_under_a_live_subscription_with_a_steady_publisher(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "forum").start()
    try:
        events = _proposals(200)
        async with asyncio.timeout(timeout(90)):
            async with (
                Client(server.ws_url, backoff=QUICK) as watcher,
                Client(server.ws_url, backoff=QUICK) as publisher,
            ):
                seen: list[tuple[int, str]] = []
                sub = watcher.subscribe(
                    {"kinds": ["proposal"]}
                )  # no after_seq: resumes from LIVE's seq
                task = asyncio.create_task(_collect(sub, len(events), seen))

                async def publish_all() -> None:
                    for i, e in enumerate(events):
                        await publisher.publish(
                            e
                        )  # waits through the outage; re-sent if unacknowledged
                        if i % 10 == 0:
                            await asyncio.sleep(0.01)

                pub = asyncio.create_task(publish_all())
                await _wait_for(lambda: len(seen) >= 50, 20)
                await asyncio.to_thread(server.kill)
                await asyncio.sleep(0.3)
                await asyncio.to_thread(server.start)
                await asyncio.wait_for(pub, timeout(30))
                await asyncio.wait_for(task, timeout(30))
        assert sorted(eid for _, eid in seen) == sorted(e.id for e in events)
        assert len(seen) == len({eid for _, eid in seen})
        assert [s for s, _ in seen] == sorted(s for s, _ in seen)
        assert watcher.reconnects >= 1 and publisher.reconnects >= 1
    finally:
        server.kill()


async def test_a_publish_made_while_the_server_is_down_is_sent_when_it_returns(
    tmp_path: Path,
) -> None:
    server = ServeProcess(tmp_path / "forum").start()
    try:
        async with asyncio.timeout(timeout(60)), Client(server.ws_url, backoff=QUICK) as client:
            await client.publish(builders.agent(ALICE, name="Alice", about="x"))
            await asyncio.to_thread(server.kill)
            await _wait_for(lambda: not client.connected, 10)
            idea = _proposals(1)[0]
            pending = asyncio.create_task(client.publish(idea))
            await asyncio.sleep(0.3)
            assert not pending.done()
            await asyncio.to_thread(server.start)
            result = await asyncio.wait_for(pending, timeout(20))
            assert result.accepted and result.id == idea.id
            stored = await client.query({"ids": [idea.id]})
            assert [e.id for _, e in stored] == [idea.id]
    finally:
        server.kill()


async def test_score_updates_arrive_for_a_rated_proposal(forum_serve: ServeProcess) -> None:
    async with asyncio.timeout(timeout(30)), Client(forum_serve.ws_url) as client:
        idea = _proposals(1)[0]
        await client.publish(idea)
        scores = client.subscribe_scores([idea.id])
        first = asyncio.create_task(anext(scores))
        # Whether SUBSCRIBE reaches the forum before or after the rating, an update follows:
        # the current scores on subscribing, or the change pushed after the recompute.
        await client.publish(builders.rating(BOB, target=idea.id, score=0.5))
        update = await first
        assert update["target"] == idea.id
        await scores.aclose()
