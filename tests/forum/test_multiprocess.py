"""Two `forum serve` processes on one database (PostgreSQL: LISTEN/NOTIFY; SQLite:
each watches the log head): every subscriber of either process receives every
event exactly once, in seq order, with no gaps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.forum.helpers import Signer, event_id, proposal
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

EVENTS_PER_PUBLISHER = 400


async def _subscribe(url: str, want: int, out: list[tuple[int, str]], ready: asyncio.Event) -> None:
    async with connect(url, max_size=None) as ws:
        await ws.send(orjson.dumps(["SUBSCRIBE", "all", {"after_seq": 0}]).decode())
        async for raw in ws:
            msg = orjson.loads(raw)
            if msg[0] == "LIVE":
                ready.set()
            elif msg[0] == "EVENT":
                out.append((msg[2], event_id(msg[3])))
                if len(out) >= want:
                    return


async def _publish(url: str, envs: list[dict[str, str]]) -> set[str]:
    acked: set[str] = set()
    async with connect(url, max_size=None) as ws:
        for env in envs:
            await ws.send(orjson.dumps(["PUBLISH", env]).decode())
        while len(acked) < len(envs):
            msg = orjson.loads(await ws.recv())
            if msg[0] == "OK":
                assert msg[2] is True, msg
                acked.add(msg[1])
    return acked


@pytest.mark.slow
async def test_two_processes_deliver_every_event(tmp_path: Path, database_url: str) -> None:
    a = ForumProcess(tmp_path / "a", database_url, author_rate=0, address_rate=0).start()
    b = ForumProcess(tmp_path / "b", database_url, author_rate=0, address_rate=0).start()
    try:
        publishers = [[proposal(s, f"Idea {i}") for i in range(EVENTS_PER_PUBLISHER)] for s in (Signer(), Signer(), Signer(), Signer())]
        total = sum(len(p) for p in publishers)
        results: list[list[tuple[int, str]]] = [[] for _ in range(6)]
        readies = [asyncio.Event() for _ in results]
        subs = [
            asyncio.create_task(_subscribe((a if i % 2 else b).ws_url, total, results[i], readies[i]))
            for i in range(len(results))
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout(10))
        acked = await asyncio.wait_for(
            asyncio.gather(*(_publish((a, b)[i % 2].ws_url, p) for i, p in enumerate(publishers))), timeout(60)
        )
        await asyncio.wait_for(asyncio.gather(*subs), timeout(30))
        all_ids = set().union(*acked)
        assert len(all_ids) == total
        reference = results[0]
        assert [seq for seq, _ in reference] == list(range(1, total + 1))  # in order, no gaps
        assert {eid for _, eid in reference} == all_ids
        for got in results[1:]:
            assert got == reference  # same events, same seqs, same order, exactly once
    finally:
        a.kill()
        b.kill()


@pytest.mark.slow
async def test_workers_setting_runs_several_processes_on_one_socket(tmp_path: Path, database_url: str) -> None:
    server = ForumProcess(tmp_path, database_url, workers=2, author_rate=0, address_rate=0).start()
    try:
        envs = [proposal(Signer(), f"Idea {i}") for i in range(200)]
        results: list[list[tuple[int, str]]] = [[] for _ in range(4)]
        readies = [asyncio.Event() for _ in results]
        subs = [asyncio.create_task(_subscribe(server.ws_url, len(envs), results[i], readies[i])) for i in range(4)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout(10))
        halves = [envs[::2], envs[1::2]]
        await asyncio.wait_for(asyncio.gather(*(_publish(server.ws_url, h) for h in halves)), timeout(60))
        await asyncio.wait_for(asyncio.gather(*subs), timeout(30))
        for got in results:
            assert [seq for seq, _ in got] == list(range(1, len(envs) + 1))
            assert {eid for _, eid in got} == {event_id(e) for e in envs}
    finally:
        server.kill()
