"""Rater standing: how often a rater's ratings agree with the outcome of the fit.

This is the idea of Community Notes' rater helpfulness.  After a first bridging fit
(unit weights), some targets are *decided*:

* targets with a positive status ("bridging", "broad_support"): the expected rating is
  positive;
* "rejected" targets (both sides rate them below -0.3): the expected rating is negative.

Every other target (split, unclear, insufficient) says nothing about a rater.  For each
rater, over their ratings of decided targets with a non-zero score (a score of exactly
0 neither agrees nor disagrees and is skipped):

* ``n_decided`` = number of such ratings, ``n_agree`` = those whose sign matches the
  expected sign;
* ``agreement = (n_agree + PRIOR_AGREE) / (n_decided + PRIOR_AGREE + PRIOR_DISAGREE)``
  (a Beta(1, 1) prior: 0.5 with no evidence);
* ``weight = NEW_RATER_WEIGHT`` if ``n_decided < MIN_DECIDED``, otherwise
  ``max(0, 2 * agreement - 1)``: 0 for a coin-flip rater, 6/7 -> 0.714 after 5 agreeing
  ratings, 21/22 -> 0.909 after 20.

The weights feed the second-pass fit (:func:`raters.bridging.fit_bridging`) and the
protected means through :func:`rating_weights`.  A *newcomer* (fewer than
``MIN_DECIDED`` decided ratings: a fresh key, a sybil, an honest agent that just
arrived) is not silenced but **budgeted**: on each target, each newcomer's rating weighs
``min(NEWCOMER_WEIGHT, NEWCOMER_BUDGET / newcomers on that target)``, so all newcomers
together weigh at most ``NEWCOMER_BUDGET`` raters on any target, however many keys
there are.  Standing is therefore never switched off: with no rater in standing (a
young forum), every rating is a newcomer's and the budget still applies.

The **first pass** is protected the same way, by age instead of standing
(:func:`first_pass_weights`): a rater is *established* when its age (given by the
caller: the forum counts ratings made by established raters since the rater's first
rating, a clock that fresh keys cannot advance) is at least ``ESTABLISH_AGE``; the
ratings of the others are budgeted as above.  Only when no rater is established (a
forum's first moments) does every rating weigh 1.  Age cannot be taken away by an
attacker, so a flood of fresh keys can never switch this off.

Constants:
    ESTABLISH_AGE = 100,
    MIN_DECIDED = 5, NEW_RATER_WEIGHT = 0.0 (standing weight of a newcomer),
    PRIOR_AGREE = 1.0, PRIOR_DISAGREE = 1.0, NEWCOMER_WEIGHT = 0.5,
    NEWCOMER_BUDGET = 2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raters.bridging import BridgingFit
from raters.ratings import FloatArray, IntArray, Ratings

MIN_DECIDED = 5
NEW_RATER_WEIGHT = 0.0
PRIOR_AGREE = 1.0
PRIOR_DISAGREE = 1.0
NEWCOMER_WEIGHT = 0.5
NEWCOMER_BUDGET = 2.0
ESTABLISH_AGE = 100


@dataclass(frozen=True)
class Standing:
    """Per-rater standing.

    Fields (all arrays of length n_raters):
        n_decided: int64, non-zero ratings of decided targets.
        n_agree: int64, of those, ratings whose sign matches the decided status.
        agreement: float64, smoothed agreement rate (0.5 with no evidence).
        weight: float64 in [0, 1], weight for the second-pass fit.
    """

    n_decided: IntArray
    n_agree: IntArray
    agreement: FloatArray
    weight: FloatArray


def rater_standing(
    ratings: Ratings,
    fit: BridgingFit,
    eligible: npt.ArrayLike | None = None,
) -> Standing:
    """Standing of every rater given a (first-pass) bridging fit.

    Inputs:
        ratings: canonical :class:`Ratings` (the ones the fit was made on).
        fit: :class:`BridgingFit` whose statuses define the decided targets.
        eligible: optional bool array, one entry per rating **in the caller's original
            order** (it is permuted with ``ratings.order``); ratings marked False do not
            count for standing.  The forum can use it to count only ratings made before
            the target's status was first published, so that agreeing with an already
            visible outcome earns nothing.  Default: all ratings count.
    Output: :class:`Standing` (see module doc for the exact rules).
    """
    nr = ratings.n_raters
    expected = np.zeros(ratings.n_targets, dtype=np.int8)
    expected[fit.supported()] = 1
    expected[fit.rejected()] = -1
    exp_r = expected[ratings.target]
    sign = np.sign(ratings.score).astype(np.int8)
    counted = (exp_r != 0) & (sign != 0)
    if eligible is not None:
        e = np.asarray(eligible, dtype=bool)
        if e.shape != (ratings.n_ratings,):
            raise ValueError("eligible must have one entry per rating")
        counted &= e[ratings.order]
    n_decided = np.bincount(ratings.rater[counted], minlength=nr).astype(np.int64)
    n_agree = np.bincount(ratings.rater[counted & (sign == exp_r)], minlength=nr).astype(np.int64)
    agreement = (n_agree + PRIOR_AGREE) / (n_decided + PRIOR_AGREE + PRIOR_DISAGREE)
    weight = np.where(
        n_decided < MIN_DECIDED, NEW_RATER_WEIGHT, np.maximum(0.0, 2.0 * agreement - 1.0)
    )
    return Standing(n_decided, n_agree, agreement.astype(np.float64), weight.astype(np.float64))


def _budgeted(ratings: Ratings, new: npt.NDArray[np.bool_], full: FloatArray) -> FloatArray:
    """``full`` for ratings by non-newcomers, the bounded newcomer share for the others."""
    per_target = np.bincount(ratings.target[new], minlength=ratings.n_targets).astype(np.float64)
    share = np.minimum(NEWCOMER_WEIGHT, NEWCOMER_BUDGET / np.maximum(per_target, 1.0))
    return np.where(new, share[ratings.target], full).astype(np.float64)


def first_pass_weights(ratings: Ratings, age: npt.ArrayLike | None) -> FloatArray | None:
    """Per-rating weights of the first pass (None = every rating weighs 1).

    ``age``: per rater, its age (see module doc).  Raters younger than ESTABLISH_AGE
    are budgeted; None when ``age`` is None or no rater is established.
    """
    if age is None:
        return None
    old = np.asarray(age, dtype=np.float64) >= ESTABLISH_AGE
    if old.shape != (ratings.n_raters,):
        raise ValueError("age must have one entry per rater")
    if not old.any():
        return None
    return _budgeted(ratings, ~old[ratings.rater], np.ones(ratings.n_ratings))


def rating_weights(ratings: Ratings, standing: Standing) -> FloatArray:
    """One weight per rating (canonical order) for the second pass and protected means.

    A rater with standing (``n_decided >= MIN_DECIDED``) weighs its standing weight on
    every rating; a newcomer's rating of target t weighs
    ``min(NEWCOMER_WEIGHT, NEWCOMER_BUDGET / (newcomer ratings of t))``.
    """
    new = standing.n_decided[ratings.rater] < MIN_DECIDED
    return _budgeted(ratings, new, standing.weight[ratings.rater])
