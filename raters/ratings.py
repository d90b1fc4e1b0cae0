"""Input containers shared by every rater algorithm.

The forum hands the algorithms the *current* ratings (one per rater and target) as
parallel arrays.  Everything here is pure: no I/O, no global state.

Canonical order
---------------
Every algorithm first sorts the ratings by ``(target, rater)`` (a stable lexicographic
sort).  Floating-point sums then always run in the same order, so the output is
bit-for-bit identical whatever order the caller passed the ratings in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Ratings:
    """Current ratings as parallel arrays, validated and in canonical order.

    Build it with :meth:`Ratings.build` (which validates and sorts); do not call the
    constructor directly unless the arrays are already canonical.

    Fields:
        rater: int64 array (n,), rater index in ``[0, n_raters)``.
        target: int64 array (n,), target index in ``[0, n_targets)``.
        score: float64 array (n,), score in ``[-1, 1]``.
        n_raters: number of raters (rows); raters without ratings are allowed.
        n_targets: number of targets (columns); targets without ratings are allowed.
        order: int64 array (n,), position of each canonical rating in the caller's
            input (``score == input_score[order]``), so per-rating side arrays can be
            permuted the same way.
    """

    rater: IntArray
    target: IntArray
    score: FloatArray
    n_raters: int
    n_targets: int
    order: IntArray

    @classmethod
    def build(
        cls,
        rater: npt.ArrayLike,
        target: npt.ArrayLike,
        score: npt.ArrayLike,
        n_raters: int,
        n_targets: int,
    ) -> Ratings:
        """Validate parallel arrays and return them sorted by ``(target, rater)``.

        Inputs:
            rater, target: integer array-likes of equal length (one entry per rating).
            score: float array-like of the same length, each value finite and in [-1, 1].
            n_raters, n_targets: sizes of the index spaces (>= 0).

        Output: a :class:`Ratings` in canonical order.

        Raises ``ValueError`` on mismatched lengths, indices out of range, scores
        outside [-1, 1] or not finite, or a duplicated ``(rater, target)`` pair (the
        caller must pass current ratings only; see :func:`latest_ratings`).
        """
        r = np.asarray(rater)
        t = np.asarray(target)
        s = np.asarray(score, dtype=np.float64)
        if r.ndim != 1 or t.ndim != 1 or s.ndim != 1:
            raise ValueError("rater, target and score must be one-dimensional")
        if not (len(r) == len(t) == len(s)):
            raise ValueError("rater, target and score must have the same length")
        if n_raters < 0 or n_targets < 0:
            raise ValueError("n_raters and n_targets must be >= 0")
        if len(r) and not (
            np.issubdtype(r.dtype, np.integer) and np.issubdtype(t.dtype, np.integer)
        ):
            raise ValueError("rater and target must be integer arrays")
        r = r.astype(np.int64, copy=False)
        t = t.astype(np.int64, copy=False)
        if len(r):
            if r.min() < 0 or r.max() >= n_raters:
                raise ValueError("rater index out of range")
            if t.min() < 0 or t.max() >= n_targets:
                raise ValueError("target index out of range")
            if not np.all(np.isfinite(s)) or s.min() < -1.0 or s.max() > 1.0:
                raise ValueError("scores must be finite and within [-1, 1]")
        order = np.lexsort((r, t)).astype(np.int64)
        r, t, s = r[order], t[order], s[order]
        if len(r) > 1:
            dup = (r[1:] == r[:-1]) & (t[1:] == t[:-1])
            if dup.any():
                i = int(np.flatnonzero(dup)[0])
                raise ValueError(f"duplicate rating for rater {int(r[i])} on target {int(t[i])}")
        return cls(r, t, s, int(n_raters), int(n_targets), order)

    @property
    def n_ratings(self) -> int:
        """Number of ratings."""
        return len(self.score)


def latest_ratings(
    rater: npt.ArrayLike,
    target: npt.ArrayLike,
    seq: npt.ArrayLike,
) -> IntArray:
    """Select the latest rating per ``(rater, target)`` from a log of ratings.

    Inputs:
        rater, target: integer array-likes, one entry per logged rating.
        seq: a sortable array-like (log position or timestamp), same length; the
            entry with the greatest ``seq`` wins; equal ``seq`` values are broken by
            input position (later wins).

    Output: sorted int64 array of the indices (into the inputs) of the ratings to
    keep, one per distinct ``(rater, target)`` pair.
    """
    r = np.asarray(rater, dtype=np.int64)
    t = np.asarray(target, dtype=np.int64)
    q = np.asarray(seq)
    if not (len(r) == len(t) == len(q)):
        raise ValueError("rater, target and seq must have the same length")
    if len(r) == 0:
        return np.zeros(0, dtype=np.int64)
    pos = np.arange(len(r), dtype=np.int64)
    order = np.lexsort((pos, q, r, t))  # last key is primary: target, rater, seq, pos
    rs, ts = r[order], t[order]
    last = np.ones(len(r), dtype=bool)
    last[:-1] = (rs[1:] != rs[:-1]) | (ts[1:] != ts[:-1])
    return np.sort(order[last]).astype(np.int64)
