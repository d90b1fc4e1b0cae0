"""``forum demo``: a forum, a few hundred owners' agents and twelve communities, measured.

The demo starts a real forum (``python -m forum``, SQLite in a data directory)
and a simulated world (:mod:`clients.demo.world`) that talks to it over WebSockets
like any other client:

* owners with hidden values give their agents private feedback now and then;
* agents (:class:`clients.agent.owner_agent.OwnerAgent`) rate every proposal and re-rate
  when results change their prediction, sharing ``connections`` WebSocket
  connections (each connection's agents share one :class:`~clients.agent.model.Board`
  fed by one event subscription and one score subscription);
* some agents publish the corpus proposals over the first 60 % of the run;
* the twelve communities try proposals (half the time the forum's best-ranked
  one they have not tried, otherwise one at random) and publish a ``running``
  report, then a ``completed`` report with measured metrics.

Every owner also has a *shadow* model: identical to their agent's (same
features, same feedback at the same moments, same refits) except that it
ignores every streamed result. Comparing the two on ratings the owner never
gave measures what the streamed results are worth. Definitions of every
figure in the report are in docs/demo.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from scipy.stats import spearmanr

from clients.agent.model import Board, OwnerModel
from clients.agent.owner import Notice, OwnerProfile
from clients.agent.owner_agent import OwnerAgent
from clients.demo.world import (
    Community,
    Proposal,
    SimOwner,
    communities_of,
    load_corpus,
    make_owners,
    measured_metrics,
    proposals_of,
    verdict_for,
)
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.client import Client
from clients.sdk.keys import Key, derive_key

__all__ = ["DemoConfig", "ForumServer", "run_demo"]

FORUM_SETTINGS: Final = {
    # Generous limits: the demo's few connections carry hundreds of agents.
    "FORUM_AUTHOR_RATE": "0",
    "FORUM_ADDRESS_RATE": "0",
    "FORUM_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "FORUM_SUBSCRIBER_QUEUE_FRAMES": "200000",
    # Refit bridging and groups often, so the score stream moves during a short run.
    "FORUM_SCORES_INTERVAL_S": "2",
    "FORUM_SCORES_MIN_NEW_RATINGS": "1000",
    "FORUM_LOG_LEVEL": "warning",
    "FORUM_NAME": "Mycelium demo",
}
"""FORUM_* settings of the demo's forum process (docs/settings.md describes each)."""

PUBLISH_UNTIL: Final = 0.6
"""Proposals are published over the first 60 % of the run (8 of them at the start)."""
FIRST_PROPOSALS: Final = 8
TRIAL_GAP: Final = 0.06
"""Each community starts a trial about every 6 % of the run (jittered)."""
TRIAL_LENGTH: Final = 0.12
"""A trial runs for 12 % of the run before its completed report."""
EXPLORE: Final = 0.5
"""Probability that a community picks a random untried proposal instead of the forum's best-ranked."""
CHECKPOINTS: Final = 12
CALENDAR_START: Final = dt.date(2026, 1, 5)
CALENDAR_DAYS: Final = 730
"""The run's duration stands for two years of community life (dates in outcome reports)."""


@dataclass
class DemoConfig:
    agents: int = 300
    duration: float = 60.0
    seed: int = 0
    connections: int = 4
    feedback: int = 12
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    report: Path | None = None
    live: bool = True
    tick: float = 1.0


# --------------------------------------------------------------------------- the forum process


class ForumServer:
    """The demo's forum: ``python -m forum`` in its own process group, configured by FORUM_*."""

    def __init__(self, data_dir: Path, host: str, port: int) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def start(self, timeout: float = 60.0) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
        env.update(FORUM_SETTINGS)
        env.update(
            FORUM_DATA_DIR=str(self.data_dir), FORUM_HOST=self.host, FORUM_PORT=str(self.port)
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forum"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the demo, which then stops the forum in order
        )
        found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                if not found.is_set() and "Mycelium listening on " in line:
                    self.url = line.split("Mycelium listening on ", 1)[1].strip()
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True, name="forum-output").start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError("the forum did not start:\n" + "".join(self.output[-40:]))
        return self.url

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return json.loads(resp.read())


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- the world


@dataclass
class Member:
    """One simulated owner with their agent and shadow model."""

    owner: SimOwner
    agent: OwnerAgent
    shadow: OwnerModel
    conn: int
    feedback_times: list[float]
    given: set[str] = field(default_factory=set)


@dataclass
class Trial:
    community: Community
    key: Key
    proposal: Proposal
    proposal_id: str
    started: float


@dataclass
class Counts:
    proposals: int = 0
    ratings: int = 0
    rerates: int = 0
    refused: int = 0
    running: int = 0
    completed: int = 0
    feedback: int = 0
    notices: int = 0
    score_frames: int = 0


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


class Demo:
    """The simulation loop, the measurements and the display."""

    def __init__(self, config: DemoConfig, server: ForumServer, console: Console) -> None:
        self.config = config
        self.server = server
        self.console = console
        self.rng = np.random.default_rng([config.seed, 7])
        self.corpus = load_corpus()
        self.proposals = proposals_of(self.corpus)
        self.communities = communities_of(self.corpus)
        secret = f"mycelium-demo/{config.seed}"
        self.community_keys = {
            c.slug: derive_key(secret, f"community/{c.slug}") for c in self.communities
        }
        self.curator = derive_key(secret, "curator")
        self.owners = make_owners(config.agents, config.seed, self.corpus)
        self.truth = np.array([[o.true_score(p) for p in self.proposals] for o in self.owners])
        self.utility = self.truth.mean(axis=0)
        self.slug_index = {p.slug: i for i, p in enumerate(self.proposals)}
        self.proposal_ids: dict[str, str] = {}  # event id -> slug
        self.ids_by_slug: dict[str, str] = {}
        self.conns: list[Connection] = []
        self.members: list[Member] = []
        self.counts = Counts()
        self.curve: list[dict[str, Any]] = []
        self.trials: dict[str, set[str]] = {c.slug: set() for c in self.communities}
        self.heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self.publishing: set[asyncio.Task[None]] = set()
        self.started = 0.0
        self.last_scores: dict[str, dict[str, Any]] = {}
        self.notices: list[tuple[int, Notice]] = []
        self.stop = asyncio.Event()
        self.interrupted = False

    # ------------------------------------------------------------------ setup

    def _push(self, t: float, kind: str, payload: Any) -> None:
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
                self._push(t, "feedback", o.index)
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
            first.append(
                (
                    0,
                    builders.community(
                        self.community_keys[c.slug], name=c.name, about=c.about, place=c.place
                    ),
                )
            )
        for m in self.members:
            first.append((m.conn, m.agent.profile_event(f"Agent {m.owner.index:03d}")))
        await self._publish_now(first)
        # the proposal and trial schedule
        order = list(self.rng.permutation(len(self.proposals)))
        for rank, pi in enumerate(order):
            t = (
                0.0
                if rank < FIRST_PROPOSALS
                else float(self.rng.uniform(0.03, PUBLISH_UNTIL)) * cfg.duration
            )
            self._push(t, "proposal", int(pi))
        for c in self.communities:
            t = float(self.rng.uniform(0.05, 0.05 + TRIAL_GAP)) * cfg.duration
            self._push(t, "trial", c.slug)

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

    def _publish_later(
        self, conn: int, events: list[SignedEvent], agents: dict[str, OwnerAgent] | None = None
    ) -> None:
        async def go() -> None:
            results = await self.conns[conn].client.publish_many(events, check=False)
            for ev, res in zip(events, results, strict=True):
                if not (res.accepted or res.duplicate):
                    self.counts.refused += 1
                    if agents and ev.kind == "rating" and ev.event.author in agents:
                        agents[ev.event.author].forget(ev.body["target"])

        task = asyncio.create_task(go())
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
                getattr(self, f"_on_{kind}")(payload, when)  # at its scheduled time, even if late
            self._rate(t)
            if t >= next_check:
                self.checkpoint(t)
                next_check += cfg.duration / CHECKPOINTS
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
        settle = float(FORUM_SETTINGS["FORUM_SCORES_INTERVAL_S"]) * 1.5
        if not self.interrupted:
            await asyncio.sleep(settle)
        for m in self.members:  # refit on the final results before the last measurement
            self._refit(m)
        self.checkpoint(self.now())
        display()
        return await self.report()

    # ------------------------------------------------------------------ world events

    def _on_proposal(self, pi: int, t: float) -> None:
        p = self.proposals[pi]
        author = self.members[int(self.rng.integers(len(self.members)))]
        ev = builders.proposal(
            author.agent.key,
            title=p.title,
            summary=p.summary,
            text=p.text,
            tags=p.tags,
            criteria=p.criteria,
        )
        self.proposal_ids[ev.id] = p.slug
        self.ids_by_slug[p.slug] = ev.id
        self.counts.proposals += 1
        self._publish_later(author.conn, [ev])

    def _on_feedback(self, index: int, t: float) -> None:
        m = self.members[index]
        board = m.agent.board
        choices = [pid for pid in board.order if pid not in m.given and pid in self.proposal_ids]
        if not choices:
            return
        pid = choices[int(self.rng.integers(len(choices)))]
        p = self.proposals[self.slug_index[self.proposal_ids[pid]]]
        score, crit = m.owner.feedback(p, self.rng)
        m.given.add(pid)
        before = len(m.agent.notices)
        m.agent.feedback(pid, score, crit, note=f"private note of owner {index} about {p.slug}")
        m.shadow.learn(board, m.agent.history)
        self.counts.feedback += 1
        self.counts.notices += len(m.agent.notices) - before

    def _on_trial(self, slug: str, t: float) -> None:
        cfg = self.config
        community = next(c for c in self.communities if c.slug == slug)
        self._push(t + float(self.rng.uniform(0.7, 1.3)) * TRIAL_GAP * cfg.duration, "trial", slug)
        board = self.conns[0].board
        untried = [
            pid for pid in board.order if pid in self.proposal_ids and pid not in self.trials[slug]
        ]
        if not untried or t + TRIAL_LENGTH * cfg.duration > cfg.duration:
            return
        if self.rng.random() < EXPLORE:
            pid = untried[int(self.rng.integers(len(untried)))]
        else:
            pid = max(untried, key=lambda i: (board.results[i].shrunk_mean or 0.0, i))
        self.trials[slug].add(pid)
        p = self.proposals[self.slug_index[self.proposal_ids[pid]]]
        trial = Trial(community, self.community_keys[slug], p, pid, t)
        ev = builders.outcome(
            trial.key,
            proposal=pid,
            status="running",
            period_start=self._date(t).isoformat(),
            summary=f"{community.name} started a pilot of this proposal.",
        )
        self.counts.running += 1
        self._publish_later(0, [ev])
        self._push(t + TRIAL_LENGTH * cfg.duration, "completion", trial)

    def _on_completion(self, trial: Trial, t: float) -> None:
        measured = trial.proposal.true_effect[trial.community.type] + float(
            self.rng.normal(0, 0.05)
        )
        verdict = verdict_for(measured)
        ev = builders.outcome(
            trial.key,
            proposal=trial.proposal_id,
            status="completed",
            verdict=verdict,
            period_start=self._date(trial.started).isoformat(),
            period_end=self._date(t).isoformat(),
            metrics=measured_metrics(trial.proposal, measured, self.rng),
            summary=f"{trial.community.name} completed its pilot: {verdict}.",
        )
        self.counts.running -= 1
        self.counts.completed += 1
        self._publish_later(0, [ev])

    def _date(self, t: float) -> dt.date:
        return CALENDAR_START + dt.timedelta(days=int(t / self.config.duration * CALENDAR_DAYS))

    # ------------------------------------------------------------------ agents

    def _refit(self, m: Member) -> None:
        if m.agent.history:
            m.agent.relearn()
            m.shadow.learn(m.agent.board, m.agent.history)

    def _rate(self, t: float) -> None:
        """Refit agents whose results moved (a slice per tick), then publish every due rating."""
        stale = [m for m in self.members if m.agent.stale]
        budget = max(1, len(self.members) // 10)
        for m in stale[:budget]:
            self._refit(m)
        by_conn: dict[int, list[SignedEvent]] = {}
        agents: dict[str, OwnerAgent] = {}
        for m in self.members:
            had = len(m.agent.published)
            due = m.agent.due_ratings()
            if due:
                self.counts.rerates += len(due) - (len(m.agent.published) - had)
                self.counts.ratings += len(due)
                by_conn.setdefault(m.conn, []).extend(due)
                agents[m.agent.did] = m.agent
        for conn, events in by_conn.items():
            self._publish_later(conn, events, agents)

    # ------------------------------------------------------------------ measuring

    def checkpoint(self, t: float) -> dict[str, Any]:
        err_with: list[np.ndarray] = []
        err_without: list[np.ndarray] = []
        for m in self.members:
            board = m.agent.board
            cols = [
                (i, self.slug_index[self.proposal_ids[pid]])
                for i, pid in enumerate(board.order)
                if pid in self.proposal_ids and pid not in m.given
            ]
            if not cols:
                continue
            rows = np.array([c[0] for c in cols])
            truth = self.truth[m.owner.index, [c[1] for c in cols]]
            with_stream, _ = m.agent.predictions()
            without, _ = m.shadow.predict_all(board)
            err_with.append(np.abs(with_stream[rows] - truth))
            err_without.append(np.abs(without[rows] - truth))
        pairs = int(sum(len(e) for e in err_with))
        point = {
            "t": round(t, 2),
            "pairs": pairs,
            "accuracy_with_stream": _accuracy(err_with),
            "accuracy_without_stream": _accuracy(err_without),
            "feedback": self.counts.feedback,
            "ratings": self.counts.ratings,
            "outcomes_completed": self.counts.completed,
        }
        self.curve.append(point)
        return point

    async def report(self) -> dict[str, Any]:
        listing = await asyncio.to_thread(
            self.server.get_json, "/api/v1/scores?kind=proposal&limit=1000"
        )
        views = {v["target"]: v for v in listing["scores"] if v["target"] in self.proposal_ids}
        slugs = [self.proposal_ids[t] for t in views]
        util = np.array([self.utility[self.slug_index[s]] for s in slugs])
        effect = np.array([self.proposals[self.slug_index[s]].mean_effect for s in slugs])

        def corr(values: list[float | None], truth: np.ndarray) -> tuple[float | None, int]:
            keep = [i for i, v in enumerate(values) if v is not None]
            if len(keep) < 3:
                return None, len(keep)
            rho = spearmanr([values[i] for i in keep], truth[keep]).statistic
            return (None if not math.isfinite(rho) else round(float(rho), 4)), len(keep)

        shrunk = [v.get("shrunk_mean") for v in views.values()]
        bridging = [(v.get("bridging") or {}).get("score") for v in views.values()]
        measured = []
        for v in views.values():
            o = v.get("outcomes") or {}
            means = [m["mean"] for m in o.get("metrics", []) if m.get("mean") is not None]
            measured.append(float(np.mean(means)) if means else None)
        rank_corr, n_ranked = corr(shrunk, util)
        bridging_corr, n_bridged = corr(bridging, util)
        outcome_corr, n_tried = corr(measured, effect)
        final = self.curve[-1] if self.curve else {}
        order = sorted(views, key=lambda t: -(views[t].get("shrunk_mean") or -9))
        true_rank = {self.proposals[i].slug: r + 1 for r, i in enumerate(np.argsort(-self.utility))}
        return {
            "seed": self.config.seed,
            "agents": len(self.members),
            "duration_s": self.config.duration,
            "elapsed_s": round(self.now(), 2),
            "interrupted": self.interrupted,
            "rank_correlation": rank_corr,
            "rank_correlation_bridging": bridging_corr,
            "rank_correlation_outcomes": outcome_corr,
            "proposals_ranked": n_ranked,
            "proposals_bridged": n_bridged,
            "proposals_tried": n_tried,
            "accuracy_with_stream": final.get("accuracy_with_stream"),
            "accuracy_without_stream": final.get("accuracy_without_stream"),
            "curve": self.curve,
            "counts": self.counts.__dict__ | {"running": self.counts.running},
            "top": [
                {
                    "title": self.proposals[self.slug_index[self.proposal_ids[t]]].title,
                    "shrunk_mean": views[t].get("shrunk_mean"),
                    "bridging": (views[t].get("bridging") or {}).get("score"),
                    "true_rank": true_rank[self.proposal_ids[t]],
                }
                for t in order[:10]
            ],
        }

    # ------------------------------------------------------------------ display

    def render(self) -> Group:
        cfg = self.config
        t = min(self.now(), cfg.duration)
        bar_w = 30
        done = int(bar_w * t / cfg.duration) if cfg.duration else bar_w
        head = Text.assemble(
            ("Mycelium demo ", "bold"),
            (f"[{'#' * done}{'.' * (bar_w - done)}] ", "cyan"),
            f"{t:5.1f}/{cfg.duration:g}s   live page: ",
            (self.server.url + "/", "bold underline"),
        )
        c = self.counts
        stats = Table.grid(padding=(0, 3))
        stats.add_row(
            f"agents {len(self.members)}",
            f"proposals {c.proposals}/{len(self.proposals)}",
            f"ratings {c.ratings} ({c.rerates} re-ratings)",
            f"outcomes {c.completed} completed, {c.running} running",
        )
        stats.add_row(
            f"owner feedback {c.feedback}",
            f"notices {c.notices}",
            f"score frames {c.score_frames}",
            f"refused {c.refused}",
        )
        acc = Text("accuracy on ratings owners never gave: ")
        if self.curve:
            last = self.curve[-1]
            acc.append(f"with results {last['accuracy_with_stream']:.3f}", "green")
            acc.append("  vs  ")
            acc.append(f"ignoring them {last['accuracy_without_stream']:.3f}", "yellow")
            acc.append(f"   (at {last['t']:.0f}s, {last['pairs']} pairs)", "dim")
        else:
            acc.append("first measurement soon", "dim")
        top = Table(
            title="forum's top proposals (shrunk mean) vs hidden truth",
            title_justify="left",
            expand=False,
        )
        top.add_column("#", justify="right")
        top.add_column("proposal")
        top.add_column("forum", justify="right")
        top.add_column("ratings", justify="right")
        top.add_column("outcomes", justify="right")
        top.add_column("true rank", justify="right")
        true_rank = {self.proposals[i].slug: r + 1 for r, i in enumerate(np.argsort(-self.utility))}
        ranked = sorted(
            ((v.get("shrunk_mean") or 0.0, t, v) for t, v in self.last_scores.items()),
            key=lambda x: (-x[0], x[1]),
        )[:8]
        for r, (score, target, v) in enumerate(ranked, 1):
            slug = self.proposal_ids[target]
            o = v.get("outcomes") or {}
            top.add_row(
                str(r),
                Text(self.proposals[self.slug_index[slug]].title[:58]),
                f"{score:+.2f}",
                str(v.get("count", 0)),
                str(o.get("communities", 0)),
                str(true_rank[slug]),
            )
        return Group(head, stats, acc, top)


def _accuracy(errors: list[np.ndarray]) -> float | None:
    if not errors:
        return None
    flat = np.concatenate(errors)
    return round(float(1.0 - flat.mean() / 2.0), 4) if flat.size else None


# --------------------------------------------------------------------------- entry point


def print_report(console: Console, report: dict[str, Any]) -> None:
    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    console.print(Text("Report", style="bold"))
    console.print(
        f"  forum ranking vs true utility (Spearman, shrunk mean): {f(report['rank_correlation'])}"
        f" over {report['proposals_ranked']} proposals"
    )
    console.print(
        f"  bridging score vs true utility (Spearman):              {f(report['rank_correlation_bridging'])}"
    )
    console.print(
        f"  measured outcomes vs true effect (Spearman):             {f(report['rank_correlation_outcomes'])}"
        f" over {report['proposals_tried']} tried proposals"
    )
    console.print(
        f"  agents' accuracy WITH the streamed results:             {f(report['accuracy_with_stream'])}"
    )
    console.print(
        f"  shadow models' accuracy WITHOUT them:                   {f(report['accuracy_without_stream'])}"
    )
    curve = report["curve"]
    if curve:
        line = "  learning curve (t: with / without): " + ", ".join(
            f"{p['t']:.0f}s {f(p['accuracy_with_stream'])}/{f(p['accuracy_without_stream'])}"
            for p in curve
        )
        console.print(Text(line, style="dim"))


async def run_demo(config: DemoConfig, console: Console | None = None) -> dict[str, Any]:
    """Run the whole demo; returns the report (also written to ``config.report`` if set)."""
    console = console or Console(stderr=True)
    tmp: Path | None = None
    if config.data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="mycelium-demo-"))
        data_dir = tmp
    else:
        data_dir = config.data_dir
        if (data_dir / "forum.db").exists():
            raise FileExistsError(
                f"{data_dir} already holds a forum; give an empty or new directory"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
    port = config.port
    if port and not port_is_free(config.host, port):
        console.print(f"port {port} is taken; using a free one")
        port = 0
    server = ForumServer(data_dir, config.host, port)
    loop = asyncio.get_running_loop()
    demo: Demo | None = None
    try:
        await asyncio.to_thread(server.start)
        console.print(
            Text.assemble(
                "forum running at ", (server.url + "/", "bold underline"), f" (data in {data_dir})"
            )
        )
        demo = Demo(config, server, console)

        def interrupt() -> None:
            if demo is not None and not demo.stop.is_set():
                demo.interrupted = True
                demo.stop.set()
                console.print("stopping (Ctrl-C again to abandon the report)")
            else:
                raise KeyboardInterrupt

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, interrupt)
        await demo.setup()
        if config.live and console.is_terminal:
            with Live(
                demo.render(), console=console, refresh_per_second=4, transient=False
            ) as live:
                await demo.run(lambda: live.update(demo.render()))
                report = await demo.finish(lambda: live.update(demo.render()))
        else:
            last = [0.0]

            def plain() -> None:
                if demo.now() - last[0] >= max(5.0, config.duration / 12):
                    last[0] = demo.now()
                    c = demo.counts
                    p = demo.curve[-1] if demo.curve else {}
                    console.print(
                        f"{demo.now():6.1f}s proposals {c.proposals} ratings {c.ratings} "
                        f"outcomes {c.completed} feedback {c.feedback} "
                        f"accuracy {p.get('accuracy_with_stream')} vs {p.get('accuracy_without_stream')}"
                    )

            await demo.run(plain)
            report = await demo.finish(lambda: None)
        if config.report is not None:
            config.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return report
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        if demo is not None:
            for task in list(demo.publishing):
                task.cancel()
            for conn in demo.conns:
                await conn.close()
        await asyncio.to_thread(server.stop)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
