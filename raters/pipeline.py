"""Entry points the forum calls: cheap aggregates and the full scoring pipeline.

* :func:`compute_aggregates` - counts, means, shrunk means, per-criterion means.  Exact
  and cheap: run it with every committed batch.
* :func:`summarize_outcomes` (re-exported from :mod:`raters.outcomes`) - outcome
  summaries per proposal, also cheap.
* :func:`compute_scores` - everything, in this order:

  1. aggregates (as above);
  2. first-pass bridging fit (:func:`raters.bridging.fit_bridging`): every rating
     weighs 1, except that, given the raters' ages (``age``), raters not yet
     established are budgeted (:func:`raters.standing.first_pass_weights`);
  3. rater standing from the first-pass statuses (:func:`raters.standing.rater_standing`);
  4. one weight per rating (:func:`raters.standing.rating_weights`: standing weight, or
     the bounded newcomer share) and the second-pass bridging fit with those weights,
     warm-started from the first pass.  While fewer than ``MIN_STANDING_RATERS`` (5)
     raters have standing (a young forum), the second pass uses the first pass'
     weights instead and ``standing_applied`` is False.  Fresh keys cannot bring that
     about once raters have standing: the first pass that grants it is protected by age;
  5. protected aggregates: mean and shrunk mean with the same per-rating weights
     (:class:`Protected`): what sorting and streaming use;
  6. opinion groups (:func:`raters.groups.opinion_groups`) on all ratings.

Every result carries ``ALGORITHM`` and ``VERSION`` so that published scores can be
stamped and re-derived with the same code.  ``VERSION`` changes whenever a constant or
rule changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from raters.aggregate import (
    PRIOR_STRENGTH,
    CriterionAggregates,
    CriterionScores,
    TargetAggregates,
    aggregate_criteria,
    aggregate_targets,
)
from raters.bridging import BridgingFit, fit_bridging
from raters.groups import OpinionGroups, opinion_groups
from raters.outcomes import summarize_outcomes
from raters.ratings import Ratings
from raters.standing import (
    MIN_DECIDED,
    Standing,
    first_pass_weights,
    rater_standing,
    rating_weights,
)

ALGORITHM = "mycelium-raters"
VERSION = "2.1"
MIN_STANDING_RATERS = 5

__all__ = [
    "ALGORITHM",
    "VERSION",
    "Aggregates",
    "Protected",
    "ScoreResult",
    "compute_aggregates",
    "compute_scores",
    "compute_statuses",
    "summarize_outcomes",
]


@dataclass(frozen=True)
class Aggregates:
    """Cheap, exact aggregates (see :mod:`raters.aggregate`).

    Fields: algorithm, version, n_raters, n_targets, n_ratings, targets
    (:class:`TargetAggregates`), criteria (:class:`CriterionAggregates` or None).
    """

    algorithm: str
    version: str
    n_raters: int
    n_targets: int
    n_ratings: int
    targets: TargetAggregates
    criteria: CriterionAggregates | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists; NaN as None)."""
        t = self.targets
        out: dict[str, Any] = {
            "algorithm": self.algorithm,
            "version": self.version,
            "n_raters": self.n_raters,
            "n_targets": self.n_targets,
            "n_ratings": self.n_ratings,
            "count": _list(t.count),
            "mean": _list(t.mean),
            "shrunk_mean": _list(t.shrunk_mean),
            "global_mean": t.global_mean,
            "prior_strength": t.prior_strength,
            "criteria": None,
        }
        if self.criteria is not None:
            out["criteria"] = {
                "count": _list(self.criteria.count),
                "mean": _list(self.criteria.mean),
            }
        return out


@dataclass(frozen=True)
class Protected:
    """Sybil-protected aggregates: the plain ones with one weight per rating.

    Fields (per target, float64 (n_targets,)): weight (sum of rating weights),
    mean (``sum w s / sum w``, NaN without weight), shrunk_mean
    (``(sum w s + m * global_mean) / (sum w + m)``, m = PRIOR_STRENGTH); global_mean
    (weighted mean of every rating, 0 without weight).
    """

    weight: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    shrunk_mean: npt.NDArray[np.float64]
    global_mean: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight": _list(self.weight),
            "mean": _list(self.mean),
            "shrunk_mean": _list(self.shrunk_mean),
            "global_mean": self.global_mean,
        }


def protected_aggregates(ratings: Ratings, weights: npt.NDArray[np.float64], prior_strength: float = PRIOR_STRENGTH) -> Protected:
    """Weighted mean and shrunk mean per target (see :class:`Protected`)."""
    n = ratings.n_targets
    w = np.bincount(ratings.target, weights=weights, minlength=n).astype(np.float64)
    ws = np.bincount(ratings.target, weights=weights * ratings.score, minlength=n).astype(np.float64)
    total = float(weights.sum())
    gm = float((weights * ratings.score).sum() / total) if total > 0 else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(w > 0, ws / np.where(w > 0, w, 1.0), np.nan)
    return Protected(w, mean.astype(np.float64), ((ws + prior_strength * gm) / (w + prior_strength)).astype(np.float64), gm)


@dataclass(frozen=True)
class ScoreResult:
    """Everything :func:`compute_scores` computes.

    Fields:
        algorithm, version: :data:`ALGORITHM`, :data:`VERSION`.
        aggregates: :class:`Aggregates`.
        first_pass: unweighted :class:`BridgingFit`.
        standing: :class:`Standing` from the first pass.
        standing_applied: whether the second pass used standing weights (False while
            fewer than MIN_STANDING_RATERS raters have standing).
        bridging: the final :class:`BridgingFit` (second pass): its
            ``target_intercept`` is the bridging score, ``status`` the status.
        groups: :class:`OpinionGroups`.
        protected: :class:`Protected` aggregates (same weights as the second pass).
        weights: float64 (n_ratings,), the per-rating weights of the second pass.
    """

    algorithm: str
    version: str
    aggregates: Aggregates
    first_pass: BridgingFit
    standing: Standing
    standing_applied: bool
    bridging: BridgingFit
    groups: OpinionGroups
    protected: Protected | None = None
    weights: npt.NDArray[np.float64] | None = None

    def to_dict(self, include_raters: bool = True) -> dict[str, Any]:
        """JSON-ready dict of the result (lists; NaN as None).

        ``include_raters=False`` leaves out the per-rater arrays (rater intercepts and
        factors, standing, group labels and coordinates), keeping only per-target data.
        This is the form :func:`raters.compare.compare_results` compares.
        """
        g = self.groups
        groups: dict[str, Any] = {
            "k": g.k,
            "silhouette": _num(g.silhouette),
            "silhouette_by_k": {str(k): v for k, v in sorted(g.silhouette_by_k.items())},
            "sizes": _list(g.sizes),
            "agree": _list(g.agree),
            "disagree": _list(g.disagree),
            "pass": _list(g.passes),
            "mean": _list(g.mean),
            "consensus": _list(g.consensus),
            "repness": [
                [
                    {
                        "target": r.target,
                        "direction": r.direction,
                        "p": r.p,
                        "p_rest": r.p_rest,
                        "ratio": r.ratio,
                        "z_p": r.z_p,
                        "z_ratio": r.z_ratio,
                    }
                    for r in reps
                ]
                for reps in g.repness
            ],
        }
        out: dict[str, Any] = {
            "algorithm": self.algorithm,
            "version": self.version,
            "aggregates": self.aggregates.to_dict(),
            "first_pass": _fit_dict(self.first_pass, include_raters),
            "bridging": _fit_dict(self.bridging, include_raters),
            "standing_applied": self.standing_applied,
            "groups": groups,
            "protected": None if self.protected is None else self.protected.to_dict(),
        }
        if include_raters:
            s = self.standing
            out["standing"] = {
                "n_decided": _list(s.n_decided),
                "n_agree": _list(s.n_agree),
                "agreement": _list(s.agreement),
                "weight": _list(s.weight),
            }
            groups["labels"] = _list(g.labels)
            groups["coords"] = _list(g.coords)
        return out


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _list(a: npt.ArrayLike) -> Any:
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        obj = arr.astype(object)
        obj[~np.isfinite(arr)] = None
        return obj.tolist()
    return arr.tolist()


def _fit_dict(f: BridgingFit, include_raters: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "global_intercept": f.global_intercept,
        "target_intercept": _list(f.target_intercept),
        "target_factor": _list(f.target_factor),
        "target_support": _list(f.target_support),
        "target_raters": _list(f.target_raters),
        "status": list(f.status),
        "side_low": None if f.side_low is None else _list(f.side_low),
        "side_high": None if f.side_high is None else _list(f.side_high),
        "side_mid": None if f.side_mid is None else _list(f.side_mid),
        "side_support": None if f.side_support is None else _list(f.side_support),
        "iterations": f.iterations,
        "converged": f.converged,
        "loss": f.loss,
    }
    if include_raters:
        out["rater_intercept"] = _list(f.rater_intercept)
        out["rater_factor"] = _list(f.rater_factor)
    return out


def compute_aggregates(
    ratings: Ratings,
    criteria: CriterionScores | None = None,
    prior_strength: float = PRIOR_STRENGTH,
) -> Aggregates:
    """Cheap exact aggregates: per-target count, mean, shrunk mean; per-criterion means.

    Inputs: canonical :class:`Ratings`; optional :class:`CriterionScores` (long form,
    its targets in the same index space); ``prior_strength`` m of the shrunk mean
    (default 5).
    Output: :class:`Aggregates` stamped with ALGORITHM and VERSION.
    """
    crit = None
    if criteria is not None:
        crit = aggregate_criteria(
            criteria.target,
            criteria.criterion,
            criteria.score,
            ratings.n_targets,
            criteria.n_criteria,
        )
    return Aggregates(
        algorithm=ALGORITHM,
        version=VERSION,
        n_raters=ratings.n_raters,
        n_targets=ratings.n_targets,
        n_ratings=ratings.n_ratings,
        targets=aggregate_targets(ratings, prior_strength),
        criteria=crit,
    )


def compute_scores(
    ratings: Ratings,
    criteria: CriterionScores | None = None,
    *,
    init: BridgingFit | None = None,
    eligible: npt.ArrayLike | None = None,
    previous: tuple[str | None, ...] | None = None,
    groups_extra: Ratings | None = None,
    age: npt.ArrayLike | None = None,
) -> ScoreResult:
    """Run the whole pipeline (order and rules in the module doc).

    Inputs:
        ratings: canonical :class:`Ratings` (current ratings, one per rater and target).
        criteria: optional per-criterion scores for the aggregates.
        init: optional previous *first-pass* fit (``ScoreResult.first_pass``) to
            warm-start the first pass; the second pass always warm-starts from the
            first.  Warm starts agree with cold starts within the tolerances of
            :mod:`raters.compare`, not bit-for-bit.
        eligible: optional per-rating bool mask (caller's order) of ratings that count
            for standing; see :func:`raters.standing.rater_standing`.
        previous: optional reference status per target: the final statuses keep it
            within the hysteresis margin (:func:`raters.bridging.classify`).
        age: optional per-rater age (the forum's clock, see
            :mod:`raters.standing`): protects the first pass.
        groups_extra: optional ratings to cluster instead of ``ratings`` for the
            opinion groups (same index spaces; e.g. with authors' implicit agreement).
    Output: :class:`ScoreResult`.
    """
    aggregates = compute_aggregates(ratings, criteria)
    first, standing, applied, weights, final = _bridging_passes(
        ratings, init, eligible, previous, age
    )
    return ScoreResult(
        algorithm=ALGORITHM,
        version=VERSION,
        aggregates=aggregates,
        first_pass=first,
        standing=standing,
        standing_applied=applied,
        bridging=final,
        groups=opinion_groups(groups_extra if groups_extra is not None else ratings),
        protected=protected_aggregates(ratings, weights),
        weights=weights,
    )


def _bridging_passes(
    ratings: Ratings,
    init: BridgingFit | None,
    eligible: npt.ArrayLike | None,
    previous: tuple[str | None, ...] | None,
    age: npt.ArrayLike | None,
) -> tuple[BridgingFit, Standing, bool, npt.NDArray[np.float64], BridgingFit]:
    """Steps 2-4 of :func:`compute_scores`: (first pass, standing, standing applied,
    per-rating weights, final fit)."""
    w1 = first_pass_weights(ratings, age)
    first = fit_bridging(ratings, init=init, rating_weights=w1)
    standing = rater_standing(ratings, first, eligible)
    applied = (
        int(((standing.n_decided >= MIN_DECIDED) & (standing.weight > 0)).sum())
        >= MIN_STANDING_RATERS
    )
    if applied:
        weights = rating_weights(ratings, standing)
    else:
        weights = w1 if w1 is not None else np.ones(ratings.n_ratings)
    final = fit_bridging(ratings, init=first, rating_weights=weights, previous=previous)
    return first, standing, applied, np.asarray(weights, dtype=np.float64), final


def compute_statuses(
    ratings: Ratings,
    *,
    previous: tuple[str | None, ...] | None = None,
    age: npt.ArrayLike | None = None,
) -> tuple[str, ...]:
    """Only the final statuses of :func:`compute_scores` (same steps 2-4, cold start,
    no aggregates, protected means or groups): what a status checkpoint needs.

    Inputs as for :func:`compute_scores`.  Output: one status per target.
    """
    return _bridging_passes(ratings, None, None, previous, age)[4].status
