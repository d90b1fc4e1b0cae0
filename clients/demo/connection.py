"""One WebSocket connection shared by many simulated agents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from clients.agent.model import Board
from clients.sdk.client import Client


class Connection:
    """One WebSocket connection shared by many agents, with its board and subscriptions."""

    def __init__(self, index: int, url: str) -> None:
        self.index = index
        self.client = Client(url, max_in_flight=5000, max_buffer=100_000)
        self.board = Board()
        self.tasks: list[asyncio.Task[None]] = []
        self.on_event: Callable[[Any], None] = lambda e: None
        self.on_scores: Callable[[dict[str, Any]], None] = lambda v: None

    async def start(self) -> None:
        await self.client.connect()
        events = self.client.subscribe({"kinds": ["proposal", "outcome"], "after_seq": 0})
        scores = self.client.subscribe_scores(["*"])

        async def read_events() -> None:
            async for _seq, event in events:
                if event.kind == "proposal":
                    self.board.add_proposal(event)
                else:
                    self.board.add_outcome(event)
                self.on_event(event)

        async def read_scores() -> None:
            async for view in scores:
                self.board.add_scores(view)
                self.on_scores(view)

        self.tasks = [
            asyncio.create_task(read_events(), name=f"demo-events-{self.index}"),
            asyncio.create_task(read_scores(), name=f"demo-scores-{self.index}"),
        ]

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.client.close()
