"""Bridging scores: one-dimensional matrix factorization in the style of Community Notes.

Model, for a rating of target ``t`` by rater ``u``::

    score[u, t] ~ mu + b[u] + c[t] + f[u] * g[t]

fitted by minimising the weighted, regularized squared error::

    sum_ratings w[u] * (score - mu - b[u] - c[t] - f[u] g[t])^2
        + INTERCEPT_REG * (sum_u o[u] b[u]^2 + sum_t c[t]^2)
        + FACTOR_REG    * (sum_u o[u] f[u]^2 + sum_t g[t]^2)

where ``o[u]`` is the rater's mean rating weight (1 with unit weights; 1 for a rater of
weight 0, whose parameters are then 0): a rater that counts as a fraction of a rater
in the data counts as the same fraction in the prior, so a crowd of low-weight keys
cannot pull the gauge of ``mu`` and the intercepts.

``mu`` is not regularized.  The regularization constants are Community Notes' values
(``l2_lambda = 0.03`` on factors, five times that, 0.15, on intercepts), applied to
scores on our [-1, 1] scale.  Because the intercepts cost five times more than the
factors, whatever the raters' one-dimensional split (their factor) can explain is
explained by it, and the target intercept ``c[t]`` keeps only the approval that is
shared across that split: ``c[t]`` is the **bridging score**.

Fitting is alternating least squares: given the targets, each rater's ``(b, f)`` is a
2x2 ridge regression in closed form, and symmetrically for each target's ``(c, g)``;
``mu`` is the weighted mean residual.  All per-rater and per-target sums are computed
with ``np.bincount`` (no Python loop over ratings, raters or targets).

Identification (applied after convergence, it does not change any prediction):

* scale: ``f`` and ``g`` are only determined up to ``f * a``, ``g / a``.  We rescale so
  that the rater factors have root-mean-square 1 over ratings (each rating counts with
  its rater's weight).  ``g[t]`` is then "how much more (or less) a rater one RMS unit
  along the split rates this target", in score units.
* sign: ``f`` and ``g`` can both be negated.  We negate them if needed so that the
  target with the largest ``|g|`` (lowest index on ties) has ``g > 0``.  Which side is
  "positive" is therefore arbitrary but reproducible; compare fits sign-invariantly
  (see :mod:`raters.compare`).

Status of a target, from what its raters on each side of the split are expected to
give (:func:`side_figures`: ``low`` / ``high`` = the less / more favourable side's mean
prediction over the target's raters on that side, ``mid`` = the mean over all its
raters, ``side_support`` = the smaller side's rating weight; ``support`` = sum of
rating weights), first match wins:

* ``"insufficient"``: ``support < MIN_RATERS`` (not enough ratings);
* ``"rejected"``: ``high <= REJECT_LEVEL`` (both sides rate it below -0.3);
* ``"bridging"``: ``low >= SUPPORT_LEVEL`` and ``side_support >= SIDE_MIN`` (raters of
  both sides rated it and both sides rate it above +0.3: bridging across camps);
* ``"broad_support"``: ``mid >= SUPPORT_LEVEL`` and ``low >= 0`` (liked on average,
  disliked by no side);
* ``"split"``: ``low < -SPLIT_LEVEL`` and ``high > SPLIT_LEVEL`` (the sides disagree in
  sign);
* ``"unclear"``: everything else.

A proposal that both sides rate above +0.3 is therefore never "split".  The levels are
on the rating scale itself ([-1, 1]), not Community Notes' helpfulness scale: +0.3 is
"clearly positive" for a rating, and the split needs opposite signs beyond +-0.1.
**Hysteresis** (:func:`classify` with ``previous``): a target keeps a reference status
while its figures are within ``HYSTERESIS`` of that status' conditions and no status
tested before it holds by ``HYSTERESIS`` or more (:func:`keeps`).

Constants:
    INTERCEPT_REG = 0.15, FACTOR_REG = 0.03: L2 penalties (see above).
    MIN_RATERS = 5.0: minimum support for a decided status.
    SUPPORT_LEVEL = 0.30, REJECT_LEVEL = -0.30, SPLIT_LEVEL = 0.10, SIDE_MIN = 2.0,
    HYSTERESIS = 0.05: status rules above.
    MAX_ITER = 500, TOL = 1e-6: ALS stops when no parameter moved more than TOL in an
        iteration, or after MAX_ITER iterations.
    INIT_SEED = 0, INIT_SCALE = 0.1: cold start draws ``f`` and ``g`` from
        ``N(0, INIT_SCALE^2)`` with ``numpy.random.default_rng(INIT_SEED)`` (raters'
        draws first, then targets'); intercepts start at 0 and ``mu`` at the mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from raters.ratings import BoolArray, FloatArray, IntArray, Ratings

INTERCEPT_REG = 0.15
FACTOR_REG = 0.03
MIN_RATERS = 5.0
SUPPORT_LEVEL = 0.30
REJECT_LEVEL = -0.30
SPLIT_LEVEL = 0.10
SIDE_MIN = 2.0
HYSTERESIS = 0.05
MAX_ITER = 500
TOL = 1e-6
INIT_SEED = 0
INIT_SCALE = 0.1

STATUS_BRIDGING = "bridging"
STATUS_BROAD = "broad_support"
STATUS_SPLIT = "split"
STATUS_REJECTED = "rejected"
STATUS_UNCLEAR = "unclear"
STATUS_INSUFFICIENT = "insufficient"
STATUSES = (STATUS_BRIDGING, STATUS_BROAD, STATUS_SPLIT, STATUS_REJECTED, STATUS_UNCLEAR, STATUS_INSUFFICIENT)
"""Every status, most favourable first."""
POSITIVE_STATUSES = (STATUS_BRIDGING, STATUS_BROAD)
STATUS_SENTENCES = {
    STATUS_BRIDGING: "Raters on both sides of the forum's main split have rated it, and both sides rate it above +0.3.",
    STATUS_BROAD: "Its raters rate it above +0.3 on average and neither side of the main split rates it below 0.",
    STATUS_SPLIT: "One side of the forum's main split rates it above +0.1 and the other below -0.1.",
    STATUS_REJECTED: "Both sides of the forum's main split rate it below -0.3.",
    STATUS_UNCLEAR: "Rated enough, but with no clear verdict: not supported, rejected or split.",
    STATUS_INSUFFICIENT: "Fewer than 5 raters with standing have rated it yet: too early to say.",
}
"""One true sentence per status (pages, /about/scores, docs/raters.md)."""


@dataclass(frozen=True)
class BridgingFit:
    """Result of :func:`fit_bridging`.

    Fields:
        global_intercept: ``mu``.
        rater_intercept, rater_factor: float64 (n_raters,), ``b`` and ``f``.
        target_intercept: float64 (n_targets,), ``c``: the bridging score.
        target_factor: float64 (n_targets,), ``g``: which side likes the target
            (sign arbitrary but fixed, see module doc).
        target_support: float64 (n_targets,), sum of rater weights over its raters.
        target_raters: int64 (n_targets,), number of raters (weight > 0) of the target.
        status: tuple of n_targets strings (:data:`STATUSES`).
        side_low, side_high, side_mid, side_support: float64 (n_targets,), the figures
            the status is decided on (:func:`side_figures`).
        iterations: ALS iterations run.
        converged: whether the TOL criterion was met before MAX_ITER.
        loss: final value of the regularized objective.
    """

    global_intercept: float
    rater_intercept: FloatArray
    rater_factor: FloatArray
    target_intercept: FloatArray
    target_factor: FloatArray
    target_support: FloatArray
    target_raters: IntArray
    status: tuple[str, ...]
    iterations: int
    converged: bool
    loss: float
    side_low: FloatArray | None = None
    side_high: FloatArray | None = None
    side_mid: FloatArray | None = None
    side_support: FloatArray | None = None

    def rejected(self) -> BoolArray:
        """Targets whose status is "rejected" (both sides rate them below REJECT_LEVEL)."""
        return np.asarray(np.asarray(self.status) == STATUS_REJECTED, dtype=bool)

    def supported(self) -> BoolArray:
        """Targets whose status is positive ("bridging" or "broad_support")."""
        return np.isin(np.asarray(self.status), POSITIVE_STATUSES)


ORDER = (
    STATUS_INSUFFICIENT,
    STATUS_REJECTED,
    STATUS_BRIDGING,
    STATUS_BROAD,
    STATUS_SPLIT,
    STATUS_UNCLEAR,
)
"""The order :func:`classify` tests the rules in (first match wins)."""


def status_depth(
    status: str, low: float, high: float, mid: float, support: float, side_support: float
) -> float:
    """How deep one target's figures are inside ``status``' conditions, in score units.

    Positive (or ``inf``) when the conditions hold, negative when they fail (the largest
    shortfall); count conditions (support, raters on each side) have no margin: a failing
    one gives ``-inf``, a holding one does not bound the depth.  "unclear", the fallback,
    is ``inf``.
    """
    if status == STATUS_INSUFFICIENT:
        return float("inf") if support < MIN_RATERS else float("-inf")
    if support < MIN_RATERS:
        return float("-inf")
    if status == STATUS_REJECTED:
        return REJECT_LEVEL - high
    if status == STATUS_BRIDGING:
        return float("-inf") if side_support < SIDE_MIN else low - SUPPORT_LEVEL
    if status == STATUS_BROAD:
        return min(mid - SUPPORT_LEVEL, low)
    if status == STATUS_SPLIT:
        return min(-SPLIT_LEVEL - low, high - SPLIT_LEVEL)
    if status == STATUS_UNCLEAR:
        return float("inf")
    return float("-inf")


def status_distance(
    status: str, low: float, high: float, mid: float, support: float, side_support: float
) -> float:
    """How far one target's figures are from satisfying ``status`` (0 when they do)."""
    return max(0.0, -status_depth(status, low, high, mid, support, side_support))


def keeps(
    previous: str, low: float, high: float, mid: float, support: float, side_support: float
) -> bool:
    """Whether a target keeps its reference status ``previous`` (hysteresis).

    It does while ``previous``' conditions hold within ``HYSTERESIS``
    (depth >= -HYSTERESIS) and no status tested before it (:data:`ORDER`) holds by
    ``HYSTERESIS`` or more.  So a status changes only when the figures cross a level by
    more than the margin, in either direction: "broad_support" becomes "bridging" once
    the less favourable side reaches +0.35, and "bridging" falls back to
    "broad_support" only below +0.25.
    """
    figures = (low, high, mid, support, side_support)
    if previous not in ORDER or status_depth(previous, *figures) < -HYSTERESIS:
        return False
    return all(status_depth(q, *figures) < HYSTERESIS for q in ORDER[: ORDER.index(previous)])


def classify(
    low: npt.ArrayLike,
    high: npt.ArrayLike,
    mid: npt.ArrayLike,
    support: npt.ArrayLike,
    side_support: npt.ArrayLike,
    previous: tuple[str | None, ...] | None = None,
) -> tuple[str, ...]:
    """Status of each target (rules in the module doc), with optional hysteresis.

    Inputs: float arrays of equal length: ``low`` / ``high`` = the lower / higher of the
    two sides' expected ratings, ``mid`` = the expected rating of a rater at the centre
    (``mu + c``), ``support`` = sum of rating weights, ``side_support`` = the smaller of
    the two sides' rating weights; ``previous``: optional reference status per target
    (None = no reference): a target keeps its reference status while :func:`keeps`.
    Output: tuple of status strings (:data:`STATUSES`), one per target.
    """
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    md = np.asarray(mid, dtype=np.float64)
    n = np.asarray(support, dtype=np.float64)
    side = np.asarray(side_support, dtype=np.float64)
    enough = n >= MIN_RATERS
    out = np.full(len(lo), STATUS_UNCLEAR, dtype=object)
    out[(lo < -SPLIT_LEVEL) & (hi > SPLIT_LEVEL)] = STATUS_SPLIT
    out[(md >= SUPPORT_LEVEL) & (lo >= 0.0)] = STATUS_BROAD
    out[(lo >= SUPPORT_LEVEL) & (side >= SIDE_MIN)] = STATUS_BRIDGING
    out[hi <= REJECT_LEVEL] = STATUS_REJECTED
    out[~enough] = STATUS_INSUFFICIENT
    result = [str(x) for x in out]
    if previous is not None:
        if len(previous) != len(result):
            raise ValueError("previous must have one entry per target")
        for i, p in enumerate(previous):
            if (
                p is not None
                and p != result[i]
                and keeps(p, float(lo[i]), float(hi[i]), float(md[i]), float(n[i]), float(side[i]))
            ):
                result[i] = p
    return tuple(result)


def side_figures(
    ratings: Ratings,
    wr: FloatArray,
    mu: float,
    b: FloatArray,
    f: FloatArray,
    c: FloatArray,
    g: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per target: (low, high, mid, side_support) of a fit (see :func:`classify`).

    The two sides are the raters with a positive and with a negative factor.  A side's
    figure for a target is the weighted mean of the model's predictions
    ``mu + b[u] + c[t] + f[u] g[t]`` over the target's raters on that side: what its
    raters on that side are expected to give, whatever the gauge of ``mu`` and ``b``.
    A side without raters of the target gets the same mean over every rated target's
    raters on that side, with this target's ``c`` and ``g`` (an extrapolation, and
    ``side_support`` is then 0).  ``mid`` is the weighted mean prediction over all its
    raters; ``side_support`` the smaller of the target's rating weights from each side.
    """
    nt = ratings.n_targets
    r, t = ratings.rater, ratings.target
    fr = f[r]
    base = mu + b[r]
    pred = base + c[t] + fr * g[t]
    pos, neg = fr > 0, fr < 0
    sp = np.bincount(t, weights=wr * pos, minlength=nt)
    sn = np.bincount(t, weights=wr * neg, minlength=nt)
    st = np.bincount(t, weights=wr, minlength=nt)

    def side(mask: npt.NDArray[np.bool_], sw: npt.NDArray[Any]) -> FloatArray:
        tot = float(wr[mask].sum())
        b0 = float((wr[mask] * base[mask]).sum() / tot) if tot > 0 else mu
        f0 = float((wr[mask] * fr[mask]).sum() / tot) if tot > 0 else 0.0
        own = np.bincount(t, weights=wr * pred * mask, minlength=nt) / np.where(sw > 0, sw, 1.0)
        return np.where(sw > 0, own, b0 + c + g * f0).astype(np.float64)

    a, z = side(pos, sp), side(neg, sn)
    mid = np.where(st > 0, np.bincount(t, weights=wr * pred, minlength=nt) / np.where(st > 0, st, 1.0), mu + c)
    return (
        np.minimum(a, z).astype(np.float64),
        np.maximum(a, z).astype(np.float64),
        np.asarray(mid, dtype=np.float64),
        np.minimum(sp, sn).astype(np.float64),
    )


def _solve2(
    a00: np.ndarray, a01: np.ndarray, a11: np.ndarray, b0: np.ndarray, b1: np.ndarray
) -> tuple[FloatArray, FloatArray]:
    """Solve the symmetric 2x2 systems [[a00, a01], [a01, a11]] x = [b0, b1] elementwise."""
    det = a00 * a11 - a01 * a01
    x0 = np.asarray((a11 * b0 - a01 * b1) / det, dtype=np.float64)
    x1 = np.asarray((a00 * b1 - a01 * b0) / det, dtype=np.float64)
    return x0, x1


def _gauge(
    mu: float,
    b: FloatArray,
    f: FloatArray,
    c: FloatArray,
    g: FloatArray,
    rated_r: BoolArray,
    rated_t: BoolArray,
    om: FloatArray,
) -> float:
    """Exact line searches along the model's prediction-preserving directions.

    ALS converges slowly along directions that leave every prediction unchanged and are
    pinned only by the (weak) regularization.  Each move below minimises the penalty
    along one of them in closed form, so it never raises the objective, and is the
    identity at the optimum (it only speeds convergence up).  Arrays are updated in
    place; the new ``mu`` is returned.

    1. ``c -= dc`` (rated targets), ``b -= db`` (rated raters), ``mu += dc + db``.
    2. ``g += d`` (rated targets), ``b -= f * d``.
    3. ``f += d`` (rated raters), ``c -= g * d``.
    4. ``f *= a``, ``g /= a`` with ``a^4 = |g|^2 / |f|^2_o``.

    ``om``: the raters' prior weights ``o`` (module doc); rater sums are weighted by it.
    """
    nt_r = int(rated_t.sum())
    nr_r = int(rated_r.sum())
    if nt_r == 0 or nr_r == 0:
        return mu
    om_r = float(om[rated_r].sum())
    for _ in range(2):
        dc = float(c[rated_t].mean())
        db = float((om[rated_r] * b[rated_r]).sum() / om_r)
        c[rated_t] -= dc
        b[rated_r] -= db
        mu += dc + db
        den = FACTOR_REG * nt_r + INTERCEPT_REG * float(om @ (f * f))
        d = (INTERCEPT_REG * float(om @ (b * f)) - FACTOR_REG * float(g[rated_t].sum())) / den
        g[rated_t] += d
        b -= f * d
        den = FACTOR_REG * om_r + INTERCEPT_REG * float(g @ g)
        d = (INTERCEPT_REG * float(c @ g) - FACTOR_REG * float((om[rated_r] * f[rated_r]).sum())) / den
        f[rated_r] += d
        c -= g * d
        nf, ng = float(om @ (f * f)), float(g @ g)
        if nf > 0 and ng > 0:
            a = (ng / nf) ** 0.25
            f *= a
            g /= a
    return mu


def _pad(values: npt.ArrayLike, default: FloatArray) -> FloatArray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) > len(default):
        raise ValueError("init arrays must be 1-D and no longer than the current index space")
    out = default.copy()
    out[: len(v)] = v
    return out


def fit_bridging(
    ratings: Ratings,
    weights: npt.ArrayLike | None = None,
    init: BridgingFit | None = None,
    *,
    rating_weights: npt.ArrayLike | None = None,
    previous: tuple[str | None, ...] | None = None,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> BridgingFit:
    """Fit the one-factor bridging model by alternating least squares.

    Inputs:
        ratings: canonical :class:`Ratings` (scores in [-1, 1]).
        weights: optional float array (n_raters,) of non-negative rater weights
            (e.g. :attr:`raters.standing.Standing.weight` for the second pass); default 1.
            A rater with weight 0 has no influence and gets zero parameters.
        rating_weights: optional float array (n_ratings,), one non-negative weight per
            rating in the canonical order of ``ratings``; replaces ``weights`` (the
            second pass uses it to bound the total weight of raters without standing).
        previous: optional reference status per target for hysteresis (:func:`classify`).
        init: optional previous fit to warm-start from.  Its arrays may be shorter than
            the current index spaces (raters/targets added since): new entries start as
            in a cold start.  A warm start converges to the same optimum within the
            tolerance the comparison allows, not bit-for-bit.
        max_iter, tol: stopping rule (defaults MAX_ITER = 500, TOL = 1e-6).
    Output: :class:`BridgingFit` (normalized and sign-fixed, statuses assigned).
    """
    nr, nt = ratings.n_raters, ratings.n_targets
    r, t, s = ratings.rater, ratings.target, ratings.score
    if weights is None:
        w = np.ones(nr, dtype=np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (nr,) or not np.all(np.isfinite(w)) or (w < 0).any():
            raise ValueError("weights must be a finite non-negative array of length n_raters")
    wr = w[r]
    if rating_weights is not None:
        wr = np.asarray(rating_weights, dtype=np.float64)
        if wr.shape != (ratings.n_ratings,) or not np.all(np.isfinite(wr)) or (wr < 0).any():
            raise ValueError("rating_weights must be a finite non-negative array of length n_ratings")
    wsum = float(wr.sum())

    rng = np.random.default_rng(INIT_SEED)
    f = rng.normal(0.0, INIT_SCALE, nr)
    g = rng.normal(0.0, INIT_SCALE, nt)
    b = np.zeros(nr)
    c = np.zeros(nt)
    mu = float((wr * s).sum() / wsum) if wsum > 0 else 0.0
    if init is not None:
        f = _pad(init.rater_factor, f)
        g = _pad(init.target_factor, g)
        b = _pad(init.rater_intercept, b)
        c = _pad(init.target_intercept, c)
        mu = float(init.global_intercept)

    rated_t = np.bincount(t, weights=wr, minlength=nt) > 0
    rated_r = np.bincount(r, weights=wr, minlength=nr) > 0
    n_r = np.bincount(r, minlength=nr)
    om = np.bincount(r, weights=wr, minlength=nr) / np.maximum(n_r, 1)
    om = np.where(om > 0, om, 1.0).astype(np.float64)
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - used after the loop
        # Targets given raters.
        fr = f[r]
        y = s - mu - b[r]
        wf = wr * fr
        a00 = np.bincount(t, weights=wr, minlength=nt) + INTERCEPT_REG
        a01 = np.bincount(t, weights=wf, minlength=nt)
        a11 = np.bincount(t, weights=wf * fr, minlength=nt) + FACTOR_REG
        b0 = np.bincount(t, weights=wr * y, minlength=nt)
        b1 = np.bincount(t, weights=wf * y, minlength=nt)
        c_new, g_new = _solve2(a00, a01, a11, b0, b1)
        # Raters given targets.
        gt = g_new[t]
        y = s - mu - c_new[t]
        wg = wr * gt
        a00 = np.bincount(r, weights=wr, minlength=nr) + INTERCEPT_REG * om
        a01 = np.bincount(r, weights=wg, minlength=nr)
        a11 = np.bincount(r, weights=wg * gt, minlength=nr) + FACTOR_REG * om
        b0 = np.bincount(r, weights=wr * y, minlength=nr)
        b1 = np.bincount(r, weights=wg * y, minlength=nr)
        b_new, f_new = _solve2(a00, a01, a11, b0, b1)
        # Global intercept.
        resid = s - b_new[r] - c_new[t] - f_new[r] * gt
        mu_new = float((wr * resid).sum() / wsum) if wsum > 0 else 0.0
        mu_new = _gauge(mu_new, b_new, f_new, c_new, g_new, rated_r, rated_t, om)

        delta = max(
            abs(mu_new - mu),
            float(np.abs(c_new - c).max(initial=0.0)),
            float(np.abs(g_new - g).max(initial=0.0)),
            float(np.abs(b_new - b).max(initial=0.0)),
            float(np.abs(f_new - f).max(initial=0.0)),
        )
        b, f, c, g, mu = b_new, f_new, c_new, g_new, mu_new
        if delta < tol:
            converged = True
            break

    # Loss of the final parameters (before the prediction-preserving normalization).
    resid = s - mu - b[r] - c[t] - f[r] * g[t]
    loss = float(
        (wr * resid * resid).sum()
        + INTERCEPT_REG * (om @ (b * b) + c @ c)
        + FACTOR_REG * (om @ (f * f) + g @ g)
    )

    # Scale: rating-weighted RMS of rater factors = 1.
    rms = float(np.sqrt((wr * f[r] ** 2).sum() / wsum)) if wsum > 0 else 0.0
    if rms > 0:
        f = f / rms
        g = g * rms
    # Sign: the target with the largest |g| gets g > 0.
    if nt and g[int(np.argmax(np.abs(g)))] < 0:
        f = -f
        g = -g

    support = np.bincount(t, weights=wr, minlength=nt).astype(np.float64)
    raters_count = np.bincount(t, weights=(wr > 0).astype(np.float64), minlength=nt)
    low, high, mid, side = side_figures(ratings, wr, mu, b, f, c, g)
    return BridgingFit(
        global_intercept=mu,
        rater_intercept=b,
        rater_factor=f,
        target_intercept=c,
        target_factor=g,
        target_support=support,
        target_raters=raters_count.astype(np.int64),
        status=classify(low, high, mid, support, side, previous),
        iterations=iterations,
        converged=converged,
        loss=loss,
        side_low=low,
        side_high=high,
        side_mid=mid,
        side_support=side,
    )
