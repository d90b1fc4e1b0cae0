"""The owner's agent at its desk: the model, the owner's private state, and what it knows of the forum.

Shared by ``forum agent run|feedback|notices|explain`` and ``forum mcp``
(``owner_view``, ``owner_feedback``). It reads the forum over HTTP
(:class:`ForumReader`, stdlib only) to fetch the posts the owner gave feedback
on and the one being asked about, with their published scores; ``forum agent
run`` also feeds it the live stream. Nothing here publishes: predictions,
feedback and notices stay on this machine.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from clients.agent.config import OwnerConfig
from clients.agent.owner import Feedback, Notice, OwnerProfile, implied_score
from clients.agent.owner_agent import OwnerAgent
from clients.agent.state import AgentState
from clients.sdk.keys import Key
from clients.sdk.urls import http_url
from forum.protocol.events import Event, Limits, verify_envelope

__all__ = ["ForumReader", "OwnerDesk", "UnknownTarget"]

_EVENT_ID_LEN = 64


class UnknownTarget(LookupError):
    """The forum has no such event."""


class ForumReader:
    """GET requests to a forum's JSON API (in a worker thread; stdlib ``urllib``)."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.base = http_url(url)
        self.timeout = timeout

    def _get(self, path: str) -> Any:
        req = urllib.request.Request(self.base + path, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    async def get(self, path: str, **params: Any) -> Any:
        """The decoded JSON body, or None for a 404."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return await asyncio.to_thread(self._get, path + (f"?{query}" if query else ""))

    async def events(self, ids: Iterable[str]) -> list[Event]:
        """The verified events with these ids (unknown ids are skipped)."""
        wanted = sorted({i for i in ids if len(i) == _EVENT_ID_LEN})
        out: list[Event] = []
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]
            page = await self.get("/api/v1/events", ids=",".join(chunk), limit=len(chunk))
            for stored in page["events"]:
                env = {"payload": stored["payload"], "sig": stored["sig"]}
                out.append(verify_envelope(env, limits=Limits(max_future_ms=2**53), now_ms=0))
        return out


class OwnerDesk:
    """One owner's agent with its private state loaded (see the module doc)."""

    def __init__(
        self,
        key: Key,
        config: OwnerConfig,
        state: AgentState,
        reader: ForumReader,
        *,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.state = state
        self.reader = reader
        profile = OwnerProfile(
            list(config.profile.criteria), name=config.profile.name, notes=config.profile.notes
        )
        self.agent = OwnerAgent(key, profile, seed=seed, on_notice=self._on_notice)
        self._loaded = 0
        self._feedback_mtime = -1

    def _on_notice(self, notice: Notice) -> None:
        self.state.add_notice(notice)

    # ------------------------------------------------------------------ forum data

    async def ensure(self, ids: Iterable[str]) -> None:
        """Put these posts (and their published scores) on the board, fetching what is missing."""
        missing = [i for i in ids if i not in self.agent.board.index]
        if not missing:
            return
        for event in await self.reader.events(missing):
            self.agent.observe(event)
            if event.kind == "proposal":
                view = await self.reader.get(f"/api/v1/scores/{event.id}")
                if view is not None:
                    self.agent.observe_scores(view)

    async def sync_feedback(self) -> list[Notice]:
        """Take feedback added since the last call (by any process); returns new notices."""
        mtime = self.state.feedback_mtime()
        if mtime == self._feedback_mtime:
            return []
        history = self.state.feedback()
        await self.ensure(fb.target for fb in history)
        new = history[self._loaded :]
        replay = self._loaded == 0 and len(new) > 1
        before = len(self.agent.notices)
        if replay:
            # Rebuild from disk on start: one fit, and the watch sees the history again
            # without re-raising notices already recorded.
            for fb in new:
                residual = self._residual(fb)
                self.agent.profile.feedback.append(fb)
                if residual is not None:
                    self.agent.watch.observe(
                        residual,
                        fb.score,
                        fb.criteria,
                        self.agent.profile.weights,
                        len(self.agent.history),
                    )
            self.agent.relearn()
        else:
            for fb in new:
                self.agent.feedback(fb.target, fb.score, fb.criteria, fb.note, at_ms=fb.at_ms)
        self._loaded = len(history)
        self._feedback_mtime = mtime
        return [] if replay else self.agent.notices[before:]

    def _residual(self, fb: Feedback) -> float | None:
        implied = implied_score(self.agent.profile.weights, fb.criteria)
        return None if implied is None else fb.score - implied

    # ------------------------------------------------------------------ what the owner sees

    async def view(self, target: str) -> dict[str, Any]:
        """The agent's prediction of the owner's scores for one post, why, and the active notices."""
        await self.sync_feedback()
        await self.ensure([target])
        if target not in self.agent.board.index:
            raise UnknownTarget(target)
        pred = self.agent.predict(target)
        weights = self.agent.profile.weights
        trained = self.agent.model.trained_on
        return {
            "target": target,
            "overall": round(pred.overall, 3),
            "criteria": {
                ref: {
                    "predicted": round(score, 3),
                    "weight": round(weights.get(ref, 0.0), 3),
                    "contribution": round(weights.get(ref, 0.0) * score, 3),
                }
                for ref, score in pred.criteria.items()
            },
            "confidence": round(min(1.0, trained / 20.0), 3),
            "feedback_count": len(self.agent.history),
            "would_rate": len(self.agent.history) >= self.agent.min_feedback,
            "notices": self.state.notices()[-5:],
        }

    async def feedback(
        self, target: str, score: float, criteria: dict[str, float], note: str, at_ms: int
    ) -> dict[str, Any]:
        """Record the owner's own view of a post (private) and learn from it."""
        await self.ensure([target])
        if target not in self.agent.board.index:
            raise UnknownTarget(target)
        unknown = sorted(set(criteria) - set(self.agent.profile.refs))
        if unknown:
            raise ValueError(
                f"criteria {unknown} are not in the owner's profile; use {self.agent.profile.refs}"
            )
        await self.sync_feedback()
        count = self.state.add_feedback(Feedback(target, score, criteria, note, at_ms))
        notices = await self.sync_feedback()
        return {
            "recorded": True,
            "feedback_count": count,
            "notices": [n.message for n in notices],
        }
