"""Rater standing: how often a rater's ratings agree with the outcome of the fit.

This is the idea of Community Notes' rater helpfulness.  After a first bridging fit
(unit weights), some targets are *decided*:

* ``bridging`` targets (status "bridging"): the expected rating is positive;
* clearly *rejected* targets (:meth:`raters.bridging.BridgingFit.rejected`: support
  >= MIN_RATERS, intercept <= NEGATIVE_THRESHOLD = -0.40, |factor| < 0.50): the
  expected rating is negative.

Every other target (divisive, insufficient) says nothing about a rater.  For each
rater, over their ratings of decided targets with a non-zero score (a score of exactly
0 neither agrees nor disagrees and is skipped):

* ``n_decided`` = number of such ratings, ``n_agree`` = those whose sign matches the
  expected sign;
* ``agreement = (n_agree + PRIOR_AGREE) / (n_decided + PRIOR_AGREE + PRIOR_DISAGREE)``
  (a Beta(1, 1) prior: 0.5 with no evidence);
* ``weight = NEW_RATER_WEIGHT`` if ``n_decided < MIN_DECIDED``, otherwise
  ``max(0, 2 * agreement - 1)``: 0 for a coin-flip rater, 6/7 -> 0.714 after 5 agreeing
  ratings, 21/22 -> 0.909 after 20.

The weights feed the second-pass fit (:func:`raters.bridging.fit_bridging`).  A fresh
key (sybil) has no decided ratings and so weight ``NEW_RATER_WEIGHT = 0``: it counts in
the plain counts and means, but not in the bridging scores until it has agreed with the
community on ``MIN_DECIDED`` decided targets.

Constants:
    MIN_DECIDED = 5, NEW_RATER_WEIGHT = 0.0, PRIOR_AGREE = 1.0, PRIOR_DISAGREE = 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raters.bridging import STATUS_BRIDGING, BridgingFit
from raters.ratings import FloatArray, IntArray, Ratings

MIN_DECIDED = 5
NEW_RATER_WEIGHT = 0.0
PRIOR_AGREE = 1.0
PRIOR_DISAGREE = 1.0


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
    expected[np.asarray(fit.status) == STATUS_BRIDGING] = 1
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
