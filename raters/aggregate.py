"""Cheap, exact per-target aggregates: counts, means, per-criterion means, shrunk mean.

These are the parts the forum recomputes with every committed batch of ratings.  They
involve no fitting: given the same ratings they are reproduced exactly (up to the
floating-point summation order, which is fixed by the canonical sort of
:class:`raters.ratings.Ratings`).

Constants:
    PRIOR_STRENGTH (m = 5.0): weight, in ratings, of the global mean in the shrunk
        (Bayesian) mean ``(sum + m * global_mean) / (count + m)``.  A target with 5
        ratings sits halfway between its own mean and the global mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raters.ratings import FloatArray, IntArray, Ratings

PRIOR_STRENGTH = 5.0


@dataclass(frozen=True)
class TargetAggregates:
    """Per-target aggregates of the overall score.

    Fields:
        count: int64 (n_targets,), number of ratings per target.
        sum: float64 (n_targets,), sum of scores per target.
        mean: float64 (n_targets,), ``sum / count``; NaN where ``count == 0``.
        global_mean: mean of all scores (0.0 when there are no ratings).
        shrunk_mean: float64 (n_targets,),
            ``(sum + prior_strength * global_mean) / (count + prior_strength)``;
            equals ``global_mean`` for unrated targets.
        prior_strength: the ``m`` used.
    """

    count: IntArray
    sum: FloatArray
    mean: FloatArray
    global_mean: float
    shrunk_mean: FloatArray
    prior_strength: float


@dataclass(frozen=True)
class CriterionScores:
    """Per-criterion scores in long form, one entry per criterion score in a rating.

    Fields: target (int array), criterion (int array, in ``[0, n_criteria)``), score
    (float array in [-1, 1]), n_criteria.
    """

    target: npt.ArrayLike
    criterion: npt.ArrayLike
    score: npt.ArrayLike
    n_criteria: int


@dataclass(frozen=True)
class CriterionAggregates:
    """Per-target, per-criterion counts and means.

    Fields:
        count: int64 (n_targets, n_criteria), number of criterion scores.
        mean: float64 (n_targets, n_criteria), mean criterion score; NaN where count 0.
    """

    count: IntArray
    mean: FloatArray


def shrunk_mean(
    total: npt.ArrayLike, count: npt.ArrayLike, global_mean: float, prior_strength: float
) -> FloatArray:
    """Bayesian (shrunk) mean: ``(total + m * global_mean) / (count + m)``.

    Inputs: per-target score ``total`` and ``count`` (same shape), the prior mean
    ``global_mean`` and prior strength ``m = prior_strength`` (> 0, in ratings).
    Output: float64 array of the same shape.  Targets with few ratings are pulled
    toward ``global_mean``; with ``count >> m`` it tends to the plain mean.
    """
    if prior_strength <= 0:
        raise ValueError("prior_strength must be > 0")
    s = np.asarray(total, dtype=np.float64)
    c = np.asarray(count, dtype=np.float64)
    return np.asarray((s + prior_strength * global_mean) / (c + prior_strength))


def aggregate_targets(ratings: Ratings, prior_strength: float = PRIOR_STRENGTH) -> TargetAggregates:
    """Count, sum, mean and shrunk mean of the scores of every target.

    Input: canonical :class:`Ratings`; ``prior_strength`` = m (default
    :data:`PRIOR_STRENGTH` = 5).  The global mean is the mean over all ratings
    (each rating counts once), 0.0 when there are none.
    Output: :class:`TargetAggregates`.
    """
    n = ratings.n_targets
    count = np.bincount(ratings.target, minlength=n).astype(np.int64)
    total = np.bincount(ratings.target, weights=ratings.score, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    global_mean = float(ratings.score.sum() / ratings.n_ratings) if ratings.n_ratings else 0.0
    return TargetAggregates(
        count=count,
        sum=total,
        mean=mean,
        global_mean=global_mean,
        shrunk_mean=shrunk_mean(total, count, global_mean, prior_strength),
        prior_strength=float(prior_strength),
    )


def aggregate_criteria(
    target: npt.ArrayLike,
    criterion: npt.ArrayLike,
    score: npt.ArrayLike,
    n_targets: int,
    n_criteria: int,
) -> CriterionAggregates:
    """Count and mean of per-criterion scores for every (target, criterion).

    Inputs (long form, one entry per criterion score given in a rating):
        target: int array, target index in ``[0, n_targets)``.
        criterion: int array, criterion index in ``[0, n_criteria)``.
        score: float array, finite, in [-1, 1].
    Output: :class:`CriterionAggregates` with (n_targets, n_criteria) arrays.
    The entries are sorted by (target, criterion, score) before summing, so the
    result does not depend on input order.
    """
    t = np.asarray(target, dtype=np.int64)
    c = np.asarray(criterion, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    if not (len(t) == len(c) == len(s)):
        raise ValueError("target, criterion and score must have the same length")
    if len(t):
        if t.min() < 0 or t.max() >= n_targets or c.min() < 0 or c.max() >= n_criteria:
            raise ValueError("target or criterion index out of range")
        if not np.all(np.isfinite(s)) or s.min() < -1.0 or s.max() > 1.0:
            raise ValueError("criterion scores must be finite and within [-1, 1]")
    order = np.lexsort((s, c, t))
    flat = (t * n_criteria + c)[order]
    size = n_targets * n_criteria
    count = np.bincount(flat, minlength=size).astype(np.int64).reshape(n_targets, n_criteria)
    total = np.bincount(flat, weights=s[order], minlength=size).reshape(n_targets, n_criteria)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return CriterionAggregates(count=count, mean=mean.astype(np.float64))
