"""The owner's overall score from what the forum streams: a per-owner Bayesian linear model.

What the crowd publishes about a post includes its mean score **per criterion**
(every rater scores the criteria its owner cares about). Those are the best
public estimates of how the post does on each criterion; what differs between
owners is how much each criterion *weighs*. So the agent predicts its owner's
overall score as

    overall = sum_c beta_c * m_c + beta_e * effect + beta_s * success + beta_m * shrunk_mean + b

over the forum's per-criterion means ``m_c`` of **every** criterion the
stream reports (not only the owner's stated ones: the unstated criteria still
count in the owner's scores, and the feedback reveals how much), plus the
outcome features of :mod:`clients.agent.model` (an owner may care more or less
than the crowd whether a proposal works) and the crowd's shrunk mean.

The coefficients are a ridge regression (a Gaussian prior) on the owner's
feedback, centred on what the owner *said*: ``beta_c`` = the profile's
normalized weight on ``c`` (0 for criteria not in the profile), every other
coefficient 0. ``PRIOR_STRENGTH`` (1.0, in units of squared feature values
summed over feedback rows) is the weight of that prior: with three pieces of
feedback the stated weights dominate; with twenty, the feedback moves weight
onto the criteria the owner actually follows. Closed form, a few microseconds
per owner: ``(X'X + lambda I) beta = X'y + lambda beta_0``.

It is used (:meth:`clients.agent.model.OwnerModel.predict_all`) once the stream
reports a mean on every profile criterion for at least ``MIN_POSTS`` (3) posts,
for the posts the stream reports a mean on every profile criterion for; for
other posts (new ones nobody rated yet), before that, and for a model built
with ``use_stream=False``, the text model predicts the overall score. Unknown values are imputed as in the board (a new
post looks average). Criteria names come from the forum (untrusted): only
names that are valid criterion references count, at most ``MAX_CRITERIA``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from forum.protocol import ids

if TYPE_CHECKING:
    from clients.agent.model import Board
    from clients.agent.owner import Feedback

__all__ = ["MAX_CRITERIA", "MIN_POSTS", "PRIOR_STRENGTH", "StreamModel"]

PRIOR_STRENGTH: Final = 1.0
MIN_POSTS: Final = 3
MAX_CRITERIA: Final = 32
EXTRA: Final = ("effect", "success", "shrunk_mean")
"""Shared streamed features used beside the criteria (indices into ``SHARED_FEATURES``)."""


def stream_criteria(board: Board, profile: Sequence[str]) -> list[str]:
    """The criteria the stream reports (valid references only), the profile's first."""
    counts: dict[str, int] = {}
    for res in board.results.values():
        for name in res.criteria:
            counts[name] = counts.get(name, 0) + 1
    others = sorted(
        (c for c in counts if c not in profile and ids.CRITERION_REF.match(c)),
        key=lambda c: (-counts[c], c),
    )
    return [*profile, *others][:MAX_CRITERIA]


def ready(board: Board, profile: Sequence[str]) -> bool:
    """True when every profile criterion has a streamed mean on at least ``MIN_POSTS`` posts."""
    for ref in profile:
        if sum(ref in res.criteria for res in board.results.values()) < MIN_POSTS:
            return False
    return True


class StreamModel:
    """The per-owner linear model of the module doc."""

    def __init__(self) -> None:
        self.refs: list[str] = []
        self.profile: list[str] = []
        self.coef: np.ndarray | None = None

    def features(self, board: Board, refs: Sequence[str]) -> np.ndarray:
        """Rows = posts in ``board.order``: criterion means, extra features, 1."""
        from clients.agent.model import SHARED_FEATURES

        n = len(board.order)
        shared = board.shared()
        cols = [board.criterion_means(ref)[:, 0] for ref in refs]
        cols += [shared[:, SHARED_FEATURES.index(name)] for name in EXTRA]
        cols.append(np.ones(n))
        return np.column_stack(cols) if n else np.zeros((0, len(cols)))

    def fit(self, board: Board, weights: Mapping[str, float], history: Sequence[Feedback]) -> None:
        rows = [f for f in history if f.target in board.index]
        profile = list(weights)
        if not rows or not ready(board, profile):
            self.coef = None
            return
        refs = stream_criteria(board, profile)
        x = self.features(board, refs)[[board.index[f.target] for f in rows]]
        y = np.asarray([f.score for f in rows])
        total = sum(weights.values())
        prior = np.zeros(x.shape[1])
        for i, ref in enumerate(refs):
            prior[i] = weights.get(ref, 0.0) / total if total > 0 else 0.0
        lam = PRIOR_STRENGTH
        a = x.T @ x + lam * np.eye(x.shape[1])
        self.coef = np.linalg.solve(a, x.T @ y + lam * prior)
        self.refs = refs
        self.profile = profile

    def predict(self, board: Board) -> tuple[np.ndarray, np.ndarray] | None:
        """Overall predictions for every post on the board, and which posts they hold for: those
        the stream reports a mean on every profile criterion for (None when not fitted)."""
        if self.coef is None:
            return None
        covered = np.array(
            [all(ref in board.results[pid].criteria for ref in self.profile) for pid in board.order],
            dtype=bool,
        )
        return np.clip(self.features(board, self.refs) @ self.coef, -1.0, 1.0), covered
