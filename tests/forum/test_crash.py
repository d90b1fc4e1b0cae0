"""Nothing acknowledged is ever lost: SIGKILL the real server mid-ingest, restart, audit.

Several clients publish thousands of events, pipelined, over real sockets while
a subscriber records the seq of every event it is sent. The server is killed
with SIGKILL part-way. After a restart on the same database:

* every event that got an OK true is in the log;
* every (seq, id) the subscriber saw is in the log at the same seq;
* seqs are exactly 1..N;
* re-publishing everything (acknowledged or not) adds no duplicates.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.forum.helpers import Signer, event_id, proposal
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

CLIENTS = 4
PER_CLIENT = 1500


async def _publisher(
    url: str, envs: list[dict[str, str]], acked: set[str], stop: asyncio.Event, enough: asyncio.Event, want: int
) -> None:
    try:
        async with connect(url, max_size=None) as ws:

            async def reader() -> None:
                async for raw in ws:
                    msg = orjson.loads(raw)
                    if msg[0] == "OK" and msg[2] is True:
                        acked.add(msg[1])
                        if len(acked) >= want:
                            enough.set()

            task = asyncio.create_task(reader())
            for i, env in enumerate(envs):
                await ws.send(orjson.dumps(["PUBLISH", env]).decode())
                if i % 50 == 0:
                    await asyncio.sleep(0)
            await task
    except Exception:  # the server died under us: expected
        stop.set()


async def _subscriber(url: str, seen: dict[int, str], ready: asyncio.Event) -> None:
    try:
        async with connect(url, max_size=None) as ws:
            await ws.send(orjson.dumps(["SUBSCRIBE", "all", {"after_seq": 0}]).decode())
            async for raw in ws:
                msg = orjson.loads(raw)
                if msg[0] == "LIVE":
                    ready.set()
                elif msg[0] == "EVENT":
                    seen[msg[2]] = event_id(msg[3])
    except Exception:
        pass


def _export(base: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base}/api/v1/export", timeout=timeout(30))
    return [orjson.loads(line) for line in r.text.splitlines()]


@pytest.mark.slow
async def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, database_url: str) -> None:
    db = database_url if database_url.startswith("postgresql") else None
    server = ForumProcess(tmp_path, db, author_rate=0, address_rate=0).start()
    signers = [Signer() for _ in range(CLIENTS)]
    batches = [[proposal(s, f"Idea {i} of {s.did[-6:]}") for i in range(PER_CLIENT)] for s in signers]
    acked: set[str] = set()
    seen: dict[int, str] = {}
    stop = asyncio.Event()
    ready = asyncio.Event()
    try:
        sub = asyncio.create_task(_subscriber(server.ws_url, seen, ready))
        await asyncio.wait_for(ready.wait(), timeout(10))
        # Kill once a good share is acknowledged but (very likely) not all.
        enough = asyncio.Event()
        want = CLIENTS * PER_CLIENT // 3
        pubs = [asyncio.create_task(_publisher(server.ws_url, b, acked, stop, enough, want)) for b in batches]
        await asyncio.wait_for(enough.wait(), timeout(60))
        server.kill()
        await asyncio.wait_for(asyncio.gather(*pubs, sub, return_exceptions=True), timeout(10))
        assert acked, "nothing was acknowledged before the kill"

        server.start()  # same data dir / database
        log = _export(server.url)
        ids = [str(r["id"]) for r in log]
        seqs = [int(r["seq"]) for r in log]  # type: ignore[call-overload]
        assert seqs == list(range(1, len(log) + 1))
        assert acked <= set(ids), f"{len(acked - set(ids))} acknowledged events lost"
        by_seq = dict(zip(seqs, ids, strict=True))
        assert all(by_seq.get(seq) == eid for seq, eid in seen.items()), "a delivered seq changed"

        # Re-publish everything; the log grows only by what was never stored.
        everything = [e for b in batches for e in b]
        body = b"\n".join(orjson.dumps(e) for e in everything)
        r = httpx.post(f"{server.url}/api/v1/events:batch", content=body, timeout=timeout(120))
        results = r.json()["results"]
        assert all(x["accepted"] for x in results)
        dup = sum(1 for x in results if x["message"].startswith("duplicate: "))
        assert dup == len(set(ids))
        final = _export(server.url)
        assert len(final) == len(everything) == len({str(r["id"]) for r in final})
        print(f"acked before kill: {len(acked)}, stored: {len(ids)}, resent new: {len(everything) - dup}")
    finally:
        server.kill()
