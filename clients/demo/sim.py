"""The simulation of ``forum demo``: owners' agents, communities and the run loop.

Events scheduled on a heap fire at their time (``proposal``, ``feedback``, ``trial``,
``completion``); each tick every agent publishes its due ratings.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
from rich.console import Console

from clients.agent.model import OwnerModel
from clients.agent.owner import Notice, OwnerProfile
from clients.agent.owner_agent import OwnerAgent
from clients.demo import agents, communities, disputes, governance, measure
from clients.demo.cases import CaseStory
from clients.demo.config import (
    CHECKPOINTS,
    FIRST_PROPOSALS,
    FORUM_SETTINGS,
    PUBLISH_UNTIL,
    TRIAL_GAP,
    DemoConfig,
)
from clients.demo.connection import Connection
from clients.demo.state import Counts, Member
from clients.demo.world import communities_of, load_corpus, make_owners, proposals_of
from clients.launch import ForumProcess
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import derive_key

Handler = Callable[["Demo", Any, float], None]
HANDLERS: Final[dict[str, Handler]] = {
    "proposal": agents.on_proposal,
    "feedback": agents.on_feedback,
    "trial": communities.on_trial,
    "completion": communities.on_completion,
    # --- the governance loop (clients/demo/governance.py)
    "argue": governance.on_argue,
    "amend": governance.on_amend,
    "settle": governance.on_settle,
    "rate_report": governance.on_rate_report,
    # --- values and arbitration (clients/demo/disputes.py)
    "cases": disputes.on_open,
}
"""What each scheduled kind of moment does: ``handler(demo, payload, scheduled_time)``."""


class Demo:
    """The simulation: its state, its schedule, its connections and its loop.

    What happens at each scheduled moment lives in :mod:`clients.demo.agents` and
    :mod:`clients.demo.communities`; what is measured in :mod:`clients.demo.measure`;
    what is shown in :mod:`clients.demo.display`.
    """

    def __init__(self, config: DemoConfig, server: ForumProcess, console: Console) -> None:
        self.config = config
        self.server = server
        self.console = console
        self.rng = np.random.default_rng([config.seed, 7])
        self.corpus = load_corpus()
        self.proposals = proposals_of(self.corpus)
        self.communities = communities_of(self.corpus) + governance.extra_communities(self.corpus)
        self.gov = governance.GovState()
        self.refusals: list[str] = []  # the first few refusals, for the report
        self.stored: set[str] = set()  # ids the forum confirmed (only those are answered or rated)
        secret = f"mycelium-demo/{config.seed}"
        self.community_keys = {
            c.slug: derive_key(secret, f"community/{c.slug}") for c in self.communities
        }
        self.curator = derive_key(secret, "curator")
        self.owners = make_owners(config.agents, config.seed, self.corpus)
        # the truth at the end of the run (after every shift) and before any shift
        self.truth = np.array([[o.true_score(p) for p in self.proposals] for o in self.owners])
        self.truth_before = np.array(
            [[o.true_score(p, 0.0) for p in self.proposals] for o in self.owners]
        )
        self.utility = self.truth.mean(axis=0)
        self.slug_index = {p.slug: i for i, p in enumerate(self.proposals)}
        self.proposal_ids: dict[str, str] = {}  # event id -> slug
        self.ids_by_slug: dict[str, str] = {}
        self.conns: list[Connection] = []
        self.members: list[Member] = []
        self.counts = Counts()
        self.curve: list[dict[str, Any]] = []
        self.trials: dict[str, set[str]] = {c.slug: set() for c in self.communities}
        self.proposal_authors: dict[str, str] = {}  # event id -> did of its author
        self.card_ids: list[str] = []  # the values cards (criterion events)
        self.story: CaseStory | None = None
        self.story_stop = threading.Event()
        self.heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self.publishing: set[asyncio.Task[None]] = set()
        self.started = 0.0
        self.last_scores: dict[str, dict[str, Any]] = {}
        self.notices: list[tuple[int, Notice]] = []
        self.stop = asyncio.Event()
        self.interrupted = False

    # ------------------------------------------------------------------ setup

    def push(self, t: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, kind, payload))

    async def setup(self) -> None:
        cfg = self.config
        for i in range(max(1, cfg.connections)):
            conn = Connection(i, self.server.ws_url)
            await conn.start()
            self.conns.append(conn)
        self.conns[0].on_scores = self._record_scores
        secret = f"mycelium-demo/{cfg.seed}"
        for o in self.owners:
            conn = self.conns[o.index % len(self.conns)]
            key = derive_key(secret, f"agent/{o.index}")
            profile = OwnerProfile.from_weights(o.stated, name=f"Owner {o.index} (private)")
            agent = OwnerAgent(
                key,
                profile,
                board=conn.board,
                seed=cfg.seed * 100_003 + o.index,
                rerate_interval=cfg.duration / 10,
                on_notice=self._notice_sink(o.index),
            )
            shadow = OwnerModel(
                profile.weights, use_stream=False, seed=cfg.seed * 100_003 + o.index
            )
            n_fb = max(0, cfg.feedback)
            early = self.rng.uniform(0.02, 0.2, min(3, n_fb))
            late = self.rng.uniform(0.02, 0.95, max(0, n_fb - 3))
            times = sorted(float(x) * cfg.duration for x in np.concatenate([early, late]))
            self.members.append(Member(o, agent, shadow, conn.index, times))
            for t in times:
                self.push(t, "feedback", o.index)
        # what everyone sees first: criteria cards, community profiles, agent profiles
        first: list[tuple[int, SignedEvent]] = []
        for c in self.corpus["criteria"]:
            first.append(
                (
                    0,
                    builders.criterion(
                        self.curator,
                        title=c["title"],
                        description=c["description"],
                        policies=c["policies"],
                    ),
                )
            )
        for c in self.communities:
            first.append((0, governance.community_profile(self, c)))
        for m in self.members:
            first.append((m.conn, m.agent.profile_event(f"Agent {m.owner.index:03d}")))
        await self._publish_now(first)
        self.card_ids = [ev.id for _, ev in first if ev.kind == "criterion"]
        self.push(disputes.STORY_AT * cfg.duration, "cases", None)
        # the proposal and trial schedule
        order = list(self.rng.permutation(len(self.proposals)))
        for rank, pi in enumerate(order):
            t = (
                0.0
                if rank < FIRST_PROPOSALS
                else float(self.rng.uniform(0.03, PUBLISH_UNTIL)) * cfg.duration
            )
            self.push(t, "proposal", int(pi))
        for c in self.communities:
            t = float(self.rng.uniform(0.05, 0.05 + TRIAL_GAP)) * cfg.duration
            self.push(t, "trial", c.slug)
        governance.schedule(self)

    def _notice_sink(self, index: int) -> Callable[[Notice], None]:
        def sink(notice: Notice) -> None:
            self.notices.append((index, notice))

        return sink

    def _record_scores(self, view: dict[str, Any]) -> None:
        self.counts.score_frames += 1
        target = view.get("target")
        if isinstance(target, str) and target in self.proposal_ids:
            self.last_scores[target] = view

    async def _publish_now(self, items: list[tuple[int, SignedEvent]]) -> None:
        by_conn: dict[int, list[SignedEvent]] = {}
        for conn, ev in items:
            by_conn.setdefault(conn, []).append(ev)
        await asyncio.gather(
            *(self.conns[c].client.publish_many(evs, check=False) for c, evs in by_conn.items())
        )

    def publish_later(
        self, conn: int, events: list[SignedEvent], agents: dict[str, OwnerAgent] | None = None
    ) -> None:
        async def go() -> None:
            results = await self.conns[conn].client.publish_many(events, check=False)
            for ev, res in zip(events, results, strict=True):
                if res.accepted or res.duplicate:
                    self.stored.add(ev.id)
                else:
                    self.counts.refused += 1
                    if len(self.refusals) < 5:
                        self.refusals.append(f"{ev.kind}: {res.message}")
                    if agents and ev.kind == "rating" and ev.event.author in agents:
                        agents[ev.event.author].forget(ev.body["target"])

        task = asyncio.create_task(go())
        self.publishing.add(task)
        task.add_done_callback(self.publishing.discard)

    def _background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.publishing.add(task)
        task.add_done_callback(self.publishing.discard)

    # ------------------------------------------------------------------ the loop

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self, display: Callable[[], None]) -> None:
        cfg = self.config
        self.started = time.monotonic()
        next_check = cfg.duration / CHECKPOINTS
        while not self.stop.is_set():
            t = self.now()
            if t >= cfg.duration:
                break
            while self.heap and self.heap[0][0] <= t:
                when, _, kind, payload = heapq.heappop(self.heap)
                HANDLERS[kind](self, payload, when)  # at its scheduled time, even if late
            agents.rate(self, t)
            if t >= next_check:
                measure.checkpoint(self, t)
                next_check += cfg.duration / CHECKPOINTS
                self._background(governance.refresh_like_yours(self))
            display()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.05, cfg.tick - (self.now() - t)))

    async def finish(self, display: Callable[[], None]) -> dict[str, Any]:
        """Let the last ratings land and the scores settle, then measure."""
        if self.publishing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*list(self.publishing), return_exceptions=True), 30
                )
        if not self.interrupted and governance.settle_late(self):  # a lagging forum confirmed them late
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*list(self.publishing), return_exceptions=True), 30
                )
        settle = float(FORUM_SETTINGS["FORUM_SCORES_INTERVAL_S"]) * 1.5
        if not self.interrupted:
            await asyncio.sleep(settle)
        for m in self.members:  # refit on the final results before the last measurement
            agents.refit(m)
        measure.checkpoint(self, self.now())
        display()
        report = await measure.report(self)
        self.story_stop.set()
        report["arbitration"] = await disputes.summary(self)
        return report
