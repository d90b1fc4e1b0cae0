"""``forum agent run``: the owner's agent as a long-running service.

Follows the forum (proposals and outcomes from seq 0, then live; every score
update), keeps the owner's model fitted to the feedback in the state folder
(picking up ``forum agent feedback`` while running), and publishes a rating of
each proposal when it has enough feedback to go on (the rules of
:class:`~clients.agent.owner_agent.OwnerAgent`).

Crash safety (``kill -9`` at any instant):

* every rating is signed and written to the outbox (fsynced) before it is
  sent, and removed once the forum acknowledged it; on start the outbox is
  sent again, and the forum answers ``duplicate`` for anything it already had;
* on start the agent reads back its own ratings from the log, so it knows what
  it already published and does not rate a proposal twice;
* the model is refitted from ``feedback.json``, with the same seed, so it is the
  model it was.

Jury duty (:mod:`clients.agent.jury`): every ``jury_interval`` seconds it reads
the forum's cases document; when its key is seated on a jury it seals the vote
its owner's ``[jury]`` values give (salt kept in ``jury.json`` before the
commitment is sent) and reveals it once the reveal phase opens, through the
same outbox.

What is sent to the forum: signed rating, commitment and reveal events, and
subscription requests.
Feedback, notes, notices, weights and predictions never leave the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from clients.agent.desk import OwnerDesk
from clients.agent.jury import JuryClerk
from clients.agent.owner_agent import Published
from clients.sdk.builders import SignedEvent
from clients.sdk.client import Client

__all__ = ["AgentService"]

log = logging.getLogger(__name__)


class AgentService:
    """Run one :class:`OwnerDesk` against a forum (see the module doc)."""

    def __init__(
        self,
        desk: OwnerDesk,
        *,
        tick: float = 1.0,
        on_publish: Callable[[int], Any] | None = None,
        jury_interval: float = 5.0,
    ) -> None:
        self.desk = desk
        self.agent = desk.agent
        self.tick = tick
        self.on_publish = on_publish
        self.published_count = 0
        self.jury = JuryClerk(desk.agent.key, desk.config.jury, desk.state)
        self.jury_interval = jury_interval

    async def serve_juries(self, client: Client) -> list[dict[str, str]]:
        """Commit or reveal whatever jury duty is due (see :mod:`clients.agent.jury`)."""
        cases = await self.desk.reader.get("/api/v1/cases")
        if not cases:
            return []
        envelopes = self.jury.step(cases)
        if not envelopes:
            return []
        self.desk.state.stage(envelopes)
        results = await client.publish_many(envelopes, check=False)
        for result in results:
            if not (result.accepted or result.duplicate):
                log.warning("jury event refused: %s", result.message)  # the reason only, never the body
        self.desk.state.sent(envelopes)
        return envelopes

    async def recover(self, client: Client) -> int:
        """Send the outbox again and learn what this key already published; returns events re-sent."""
        pending = self.desk.state.outbox()
        if pending:
            results = await client.publish_many(pending, check=False)
            self.desk.state.sent(
                [e for e, r in zip(pending, results, strict=True) if r.accepted or r.duplicate]
            )
        mine = await client.query(
            {"kinds": ["rating"], "authors": [self.agent.did], "after_seq": 0, "limit": 1000}
        )
        now = self.agent.clock()
        for _seq, event in mine:
            body = event.body
            prev = self.agent.published.get(body["target"])
            if prev is None or prev.created_at <= event.created_at:
                self.agent.published[body["target"]] = Published(
                    event.id,
                    float(body["score"]),
                    dict(body.get("criteria", {})),
                    event.created_at,
                    now,
                )
        return len(pending)

    async def publish_due(self, client: Client) -> list[SignedEvent]:
        due = self.agent.due_ratings()
        if not due:
            return []
        envelopes = [e.envelope for e in due]
        self.desk.state.stage(envelopes)
        results = await client.publish_many(due, check=False)
        done = []
        for event, env, result in zip(due, envelopes, results, strict=True):
            if result.accepted or result.duplicate:
                done.append(env)
            else:
                log.warning("rating refused: %s", result.message)
                self.agent.forget(event.body["target"])
                done.append(env)  # refused for good: do not send it again
        self.desk.state.sent(done)
        self.published_count += len(due)
        if self.on_publish is not None:
            self.on_publish(len(due))
        return due

    async def run(
        self, client: Client, stop: asyncio.Event | None = None, *, refit_interval: float = 10.0
    ) -> None:
        stop = stop or asyncio.Event()
        await self.recover(client)
        await self.desk.sync_feedback()
        events = client.subscribe({"kinds": ["proposal", "outcome"], "after_seq": 0})
        scores = client.subscribe_scores(["*"])

        async def read_events() -> None:
            async for _seq, event in events:
                self.agent.observe(event)

        async def read_scores() -> None:
            async for view in scores:
                self.agent.observe_scores(view)

        async def loop() -> None:
            last_fit = self.agent.clock()
            last_jury = -math.inf
            while not stop.is_set():
                await self.desk.sync_feedback()
                if self.agent.stale and self.agent.clock() - last_fit >= refit_interval:
                    self.agent.relearn()
                    last_fit = self.agent.clock()
                await self.publish_due(client)
                if time.monotonic() - last_jury >= self.jury_interval:
                    last_jury = time.monotonic()
                    try:
                        await self.serve_juries(client)
                    except OSError as e:
                        log.warning("cannot read the cases: %s", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)

        tasks = [asyncio.create_task(c) for c in (read_events(), read_scores(), loop())]
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopped and (exc := t.exception()) is not None:
                    raise exc
        finally:
            for t in [*tasks, stopped]:
                t.cancel()
            for t in [*tasks, stopped]:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await events.aclose()
            await scores.aclose()
