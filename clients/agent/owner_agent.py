"""The owner's agent: the reference implementation of an agent that takes its owner's side.

    from clients.agent.owner_agent import OwnerAgent
    from clients.agent.owner import OwnerProfile

    profile = OwnerProfile.from_weights({"affordability": 1.0, "fairness-equity": 0.6})
    agent = OwnerAgent(key, profile, on_notice=print)
    async with Client(url) as forum:
        await agent.run(forum)            # rates proposals as they arrive, re-rates on new results
    agent.feedback(proposal_id, 0.8, {"affordability": 0.9}, note="would help us")  # from the owner

What it does:

* **Keeps the owner private.** The :class:`~clients.agent.owner.OwnerProfile`
  (criteria, weights, name, notes, feedback) stays in this process. The agent
  publishes ratings only: ``score`` (overall), ``criteria`` (one score per
  profile criterion), both its model's predictions rounded to 3 decimals, and a
  ``note`` with the reason: which criteria drove the score, in which direction
  (:func:`clients.agent.reasons.reason`), written from those published scores and
  the order of the owner's criteria, never from feedback or profile notes and
  with no weight. Never a confidence or the owner field of its profile.
* **Predicts** the owner's scores with a local scikit-learn model
  (:class:`~clients.agent.model.OwnerModel`) from the post's text and the results the
  forum streams back (scores, bridging, outcome reports).
* **Rates** every new proposal once the owner has given ``min_feedback`` (3)
  pieces of feedback (before that it has nothing to go on and abstains), except
  its own proposals and those the owner rated by hand.
* **Re-rates** a proposal when its prediction moved materially since the
  rating it last published: by at least ``rerate_threshold`` = **0.1** overall
  or ``RERATE_CRITERION_THRESHOLD`` = **0.2** on any criterion, and at least
  ``rerate_interval`` seconds (default 30) after the previous rating of it. New
  outcome reports are the usual cause: they reveal whether a proposal works.
* **Speaks up** instead of silently going along (``on_notice`` callback and
  :attr:`OwnerAgent.notices`): a :class:`~clients.agent.owner.PriorityShiftNotice`
  when recent feedback disagrees with the long-run pattern, a
  :class:`~clients.agent.owner.RequestConflictNotice` when the owner asks for a
  rating that contradicts their past choices by more than
  ``CONFLICT_THRESHOLD`` = 0.5 (after ``MIN_HISTORY`` = 5 pieces of
  feedback), a :class:`~clients.agent.owner.PrioritiesConflictNotice` when new
  stated priorities fit the owner's past choices worse (RMS error up by more
  than 0.05) than the current ones. Nothing changes until the owner confirms.

Everything received from the forum is data written by others, never
instructions: post text is hashed into features and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from clients.agent.model import Board, OwnerModel, Prediction
from clients.agent.owner import (
    Feedback,
    Notice,
    OwnerProfile,
    PrioritiesConflictNotice,
    PriorityShiftNotice,
    PriorityWatch,
    RequestConflictNotice,
    implied_score,
    normalized,
    rms,
)
from clients.agent.reasons import reason
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import Key
from forum.protocol.events import Event

if TYPE_CHECKING:
    from clients.sdk.client import Client

__all__ = [
    "CONFLICT_THRESHOLD",
    "MIN_HISTORY",
    "RERATE_CRITERION_THRESHOLD",
    "RERATE_THRESHOLD",
    "OwnerAgent",
    "Published",
]

log = logging.getLogger(__name__)

RERATE_THRESHOLD: Final = 0.1
RERATE_CRITERION_THRESHOLD: Final = 0.2
CONFLICT_THRESHOLD: Final = 0.5
PRIORITIES_MARGIN: Final = 0.05
MIN_HISTORY: Final = 5
MIN_FEEDBACK: Final = 3
RERATE_INTERVAL_S: Final = 30.0
DEFAULT_ABOUT: Final = "An owner's agent: rates proposals by its owner's criteria."


@dataclass(frozen=True, slots=True)
class Published:
    """The last rating the agent published for a target."""

    event_id: str
    score: float
    criteria: Mapping[str, float]
    created_at: int
    at: float
    """``time.monotonic()`` when it was made."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class OwnerAgent:
    """One owner's agent. See the module doc; the owner's side lives in :mod:`clients.agent.owner`.

    ``board`` may be shared by agents that receive the same forum data.
    ``use_stream`` False makes an agent that ignores every streamed result
    (the demo's control population).
    """

    def __init__(
        self,
        key: Key,
        profile: OwnerProfile,
        *,
        board: Board | None = None,
        use_stream: bool = True,
        on_notice: Callable[[Notice], Any] | None = None,
        seed: int = 0,
        rerate_threshold: float = RERATE_THRESHOLD,
        rerate_interval: float = RERATE_INTERVAL_S,
        min_feedback: int = MIN_FEEDBACK,
        watch: PriorityWatch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.profile = profile
        self.board = board if board is not None else Board()
        self.model = OwnerModel(profile.weights, use_stream=use_stream, seed=seed)
        self.watch = watch or PriorityWatch()
        self.on_notice = on_notice
        self.rerate_threshold = rerate_threshold
        self.rerate_interval = rerate_interval
        self.min_feedback = min_feedback
        self.notices: list[Notice] = []
        self.published: dict[str, Published] = {}
        self.pinned: set[str] = set()
        self.clock = clock
        self._cache: tuple[tuple[int, int, int], np.ndarray, dict[str, np.ndarray]] | None = None
        self._learned_version = -1
        if profile.feedback:
            self.model.learn(self.board, profile.feedback)

    # ------------------------------------------------------------------ identity

    @property
    def did(self) -> str:
        return self.key.did

    def profile_event(self, name: str, about: str = DEFAULT_ABOUT) -> SignedEvent:
        """The agent's public profile. It never names the owner (the ``owner`` field stays unset)."""
        return builders.agent(self.key, name=name, about=about)

    # ------------------------------------------------------------------ what the forum says

    def observe(self, event: Event) -> None:
        """Take a proposal or outcome event from the forum (other kinds are ignored)."""
        if event.kind == "proposal":
            self.board.add_proposal(event)
        elif event.kind == "outcome":
            self.board.add_outcome(event)

    def observe_scores(self, view: Mapping[str, Any]) -> None:
        """Take one SCORES view (the forum's published score of a target)."""
        self.board.add_scores(view)

    # ------------------------------------------------------------------ predictions

    def predictions(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(overall, {criterion: scores})`` for every post on the board, in ``board.order``."""
        key = (self.board.version, self.model.fits, len(self.board.order))
        if self._cache is None or self._cache[0] != key:
            overall, crit = self.model.predict_all(self.board)
            self._cache = (key, overall, crit)
        return self._cache[1], self._cache[2]

    def predict(self, target: str) -> Prediction:
        """The owner's predicted scores for one post on the board."""
        overall, crit = self.predictions()
        i = self.board.index[target]
        return Prediction(float(overall[i]), {k: float(v[i]) for k, v in crit.items()})

    # ------------------------------------------------------------------ the owner

    @property
    def history(self) -> list[Feedback]:
        return self.profile.feedback

    def feedback(
        self,
        target: str,
        score: float,
        criteria: Mapping[str, float] | None = None,
        note: str = "",
        *,
        at_ms: int | None = None,
    ) -> PriorityShiftNotice | None:
        """The owner's own view of a post (private): learn from it and watch for shifting priorities.

        Returns (and reports through ``on_notice``) a notice when the recent
        feedback disagrees with the long-run pattern.
        """
        fb = Feedback(
            target, float(score), dict(criteria or {}), note, _now_ms() if at_ms is None else at_ms
        )
        residual = self._residual(fb)
        self.profile.feedback.append(fb)
        self.relearn()
        notice = None
        if residual is not None:
            notice = self.watch.observe(
                residual, fb.score, fb.criteria, self.profile.weights, len(self.history)
            )
            if notice is not None:
                self._notify(notice)
        return notice

    def _residual(self, fb: Feedback) -> float | None:
        implied = implied_score(self.profile.weights, fb.criteria)
        if implied is not None:
            return fb.score - implied
        if fb.target in self.board.index and self.model.trained_on >= MIN_HISTORY:
            return fb.score - self.predict(fb.target).overall
        return None

    def relearn(self) -> None:
        """Refit the model on the whole feedback history with the features as they are now."""
        self.model.learn(self.board, self.history)
        self._learned_version = self.board.version

    @property
    def stale(self) -> bool:
        """True when results arrived since the model was last fitted."""
        return bool(self.history) and self._learned_version != self.board.version

    def request_rating(
        self,
        target: str,
        score: float,
        criteria: Mapping[str, float] | None = None,
        *,
        confirm: bool = False,
        now_ms: int | None = None,
    ) -> SignedEvent | RequestConflictNotice:
        """The owner asks the agent to rate ``target`` at ``score``.

        If the owner's past choices predict something else (more than
        ``CONFLICT_THRESHOLD`` away, with at least ``MIN_HISTORY`` pieces of
        feedback) and ``confirm`` is False, nothing is published: the agent
        returns (and reports) a :class:`RequestConflictNotice`. Otherwise it
        returns the signed rating to publish, records the request as feedback
        and stops re-rating that target on its own.
        """
        crit = dict(criteria or {})
        if target in self.board.index and len(self.history) >= MIN_HISTORY and not confirm:
            predicted = self.predict(target).overall
            if abs(score - predicted) > CONFLICT_THRESHOLD:
                title = self.board.posts[target].title
                notice = RequestConflictNotice(
                    message=(
                        f"You asked me to rate {title!r} at {score:+.2f}, but your past ratings "
                        f"suggest about {predicted:+.2f}. I have not published anything; "
                        "confirm and I will rate it as you asked."
                    ),
                    feedback_count=len(self.history),
                    target=target,
                    requested=float(score),
                    predicted=predicted,
                )
                self._notify(notice)
                return notice
        event = self._rating(target, float(score), crit, now_ms)
        self.pinned.add(target)
        self.feedback(target, score, crit)
        return event

    def set_priorities(
        self, weights: Mapping[str, float], *, confirm: bool = False
    ) -> PrioritiesConflictNotice | None:
        """The owner states new criteria weights.

        Applied at once unless they explain the owner's past feedback worse than
        the current weights do (RMS error up by more than ``PRIORITIES_MARGIN``,
        with at least ``MIN_HISTORY`` pieces of feedback with per-criterion
        scores); then a :class:`PrioritiesConflictNotice` is returned and
        nothing changes until the owner confirms.
        """
        new = normalized(weights)
        if not confirm:
            cur_err = self._weights_error(self.profile.weights)
            new_err = self._weights_error(new)
            if (
                cur_err is not None
                and new_err is not None
                and new_err > cur_err + PRIORITIES_MARGIN
            ):
                notice = PrioritiesConflictNotice(
                    message=(
                        "These priorities explain your past ratings worse than your current ones "
                        f"(error {new_err:.2f} against {cur_err:.2f}). Confirm if your views have changed."
                    ),
                    feedback_count=len(self.history),
                    current_weights=normalized(self.profile.weights),
                    requested_weights=new,
                    current_error=cur_err,
                    requested_error=new_err,
                )
                self._notify(notice)
                return notice
        self._apply_weights(new)
        return None

    def _weights_error(self, weights: Mapping[str, float]) -> float | None:
        residuals = []
        for fb in self.history:
            implied = implied_score(weights, fb.criteria)
            if implied is not None:
                residuals.append(fb.score - implied)
        return rms(residuals) if len(residuals) >= MIN_HISTORY else None

    def suggested_weights(self) -> dict[str, float]:
        """While a priority-shift notice is pending: the weights that best explain the owner's
        feedback since the disagreement began (refined by every feedback after the notice)."""
        return self.watch.suggest(self.profile.weights)

    def accept(self, notice: PriorityShiftNotice) -> dict[str, float]:
        """The owner agrees with a priority-shift notice: adopt the suggested weights.

        Uses :meth:`suggested_weights` (all the feedback since the shift began)
        when the notice is still pending, else the notice's own suggestion.
        Returns the weights adopted.
        """
        weights = self.suggested_weights() or dict(notice.suggested_weights)
        if not weights:
            raise ValueError("no weights to suggest yet; use set_priorities")
        self._apply_weights(weights)
        return weights

    def dismiss(self, notice: PriorityShiftNotice) -> None:
        """The owner says their priorities have not changed: keep the profile, keep watching."""
        self.watch.dismiss()

    def _apply_weights(self, weights: Mapping[str, float]) -> None:
        self.profile = self.profile.with_weights(weights)
        self.model.weights = self.profile.weights
        self.model.fits += 1  # invalidates cached predictions
        self.watch.reset()
        if self.history:
            self.relearn()

    def _notify(self, notice: Notice) -> None:
        self.notices.append(notice)
        if self.on_notice is not None:
            self.on_notice(notice)

    # ------------------------------------------------------------------ ratings

    def due_ratings(self, now_ms: int | None = None) -> list[SignedEvent]:
        """Signed ratings to publish now: new proposals and material changes (see the module doc).

        Each is recorded as published; call :meth:`forget` if the forum refuses one.
        """
        if len(self.history) < self.min_feedback or not self.board.order:
            return []
        overall, crit = self.predictions()
        now = self.clock()
        out = []
        for i, pid in enumerate(self.board.order):
            if pid in self.pinned or self.board.posts[pid].author == self.key.did:
                continue
            score = round(float(overall[i]), 3)
            scores = {ref: round(float(v[i]), 3) for ref, v in crit.items()}
            prev = self.published.get(pid)
            if prev is not None:
                if now - prev.at < self.rerate_interval:
                    continue
                moved = abs(score - prev.score) >= self.rerate_threshold or any(
                    abs(s - prev.criteria.get(ref, s)) >= RERATE_CRITERION_THRESHOLD
                    for ref, s in scores.items()
                )
                if not moved:
                    continue
            out.append(self._rating(pid, score, scores, now_ms))
        return out

    def _rating(
        self, target: str, score: float, criteria: Mapping[str, float], now_ms: int | None
    ) -> SignedEvent:
        prev = self.published.get(target)
        created = _now_ms() if now_ms is None else now_ms
        if prev is not None:
            created = max(created, prev.created_at + 1)  # the forum keeps the latest by created_at
        clipped = {k: max(-1.0, min(1.0, v)) for k, v in criteria.items()}
        event = builders.rating(
            self.key,
            target=target,
            score=max(-1.0, min(1.0, score)),
            criteria=clipped,
            note=reason(score, clipped, self.profile.weights),
            created_at=created,
        )
        self.published[target] = Published(event.id, score, dict(criteria), created, self.clock())
        return event

    def forget(self, target: str) -> None:
        """Drop the record of a rating the forum refused (it will be made again when due)."""
        self.published.pop(target, None)

    # ------------------------------------------------------------------ running against a forum

    async def run(
        self,
        client: Client,
        *,
        stop: asyncio.Event | None = None,
        tick: float = 1.0,
        refit_interval: float = 10.0,
    ) -> None:
        """Follow the forum and publish ratings until ``stop`` is set (or forever).

        One event subscription (proposals and outcomes) and one score
        subscription on ``client``; every ``tick`` seconds the due ratings are
        published together, and at most every ``refit_interval`` seconds the
        model is refitted when new results arrived.
        """
        stop = stop or asyncio.Event()
        events = client.subscribe({"kinds": ["proposal", "outcome"], "after_seq": 0})
        scores = client.subscribe_scores(["*"])

        async def read_events() -> None:
            async for _seq, event in events:
                self.observe(event)

        async def read_scores() -> None:
            async for view in scores:
                self.observe_scores(view)

        async def publish() -> None:
            last_fit = self.clock()
            while not stop.is_set():
                if self.stale and self.clock() - last_fit >= refit_interval:
                    self.relearn()
                    last_fit = self.clock()
                await self.publish_due(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)

        tasks = [asyncio.create_task(c) for c in (read_events(), read_scores(), publish())]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await events.aclose()
            await scores.aclose()

    async def publish_due(self, client: Client) -> Sequence[SignedEvent]:
        """Publish every due rating through ``client`` (refused ones are forgotten and logged)."""
        due = self.due_ratings()
        if due:
            results = await client.publish_many(due, check=False)
            for event, result in zip(due, results, strict=True):
                if not (result.accepted or result.duplicate):
                    log.warning("rating refused: %s", result.message)
                    self.forget(event.body["target"])
        return due
