"""The score engine's input queue is bounded in bytes and loses nothing (issue 11)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from forum.db import create_engine, migrate
from forum.hub import Hub
from forum.metrics import Metrics
from forum.protocol.events import Limits, verify_envelope
from forum.scores.documents import cheap_document
from forum.scores.engine import ScoresEngine
from forum.scores.ledger import Ledger
from forum.settings import Settings
from forum.store import Accepted, Store, Stored, event_from_row
from tests.forum.helpers import Signer, proposal, rating
from tests.support.timeouts import timeout


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(timeout(10) / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_batches_past_the_queue_bound_are_reread_from_the_log(tmp_path: Path) -> None:
    db = create_engine(f"sqlite+aiosqlite:///{tmp_path}/f.db")
    await migrate(db)
    store = Store(db)
    hub = Hub(store, Metrics(), queue_bytes=1 << 20)
    await hub.start()
    engine = ScoresEngine(store, hub, Settings(data_dir=tmp_path))
    await engine.start()
    try:
        await asyncio.wait_for(engine.ready.wait(), timeout(10))
        engine._batches.limit = 1  # every batch after the first queued one is dropped
        author = Signer("bounds-author")
        raters = [Signer(f"bounds-rater{i}") for i in range(5)]
        props = [verify_envelope(proposal(author, f"P{i}"), limits=Limits(), now_ms=2**52) for i in range(3)]
        batches = [props] + [
            [verify_envelope(rating(r, p.id, 0.1 * k), limits=Limits(), now_ms=2**52) for p in props]
            for k, r in enumerate(raters)
        ]
        committed = []
        for batch in batches:
            results = await store.write_batch(batch)
            committed.append([Stored(r.seq, e) for r, e in zip(results, batch, strict=True) if isinstance(r, Accepted)])
        for stored in committed:  # delivered back to back: the engine cannot take any in between
            hub.deliver(stored)
        head = hub.head
        assert engine._batches.dropped_to == head  # the bound was hit
        await _until(lambda: engine.as_of_seq >= head and not engine._batches.dropped_to)
        replay = Ledger()
        async for page in store.export(0):
            for seq, eid, payload, sig in page:
                replay.apply(seq, event_from_row(payload, sig, eid))
        assert engine.ledger.current == replay.current
        agg = cheap_document(replay)["aggregates"]
        for i, t in enumerate(sorted(p.id for p in props)):
            view = engine.get(t)
            assert view is not None and view["count"] == agg["count"][i] == len(raters)
            assert view["mean"] == agg["mean"][i]
    finally:
        await engine.stop()
        await hub.stop()
        await db.dispose()
