"""Bridging scores: one-dimensional matrix factorization in the style of Community Notes.

Model, for a rating of target ``t`` by rater ``u``::

    score[u, t] ~ mu + b[u] + c[t] + f[u] * g[t]

fitted by minimising the weighted, regularized squared error::

    sum_ratings w[u] * (score - mu - b[u] - c[t] - f[u] g[t])^2
        + INTERCEPT_REG * (sum_u b[u]^2 + sum_t c[t]^2)
        + FACTOR_REG    * (sum_u f[u]^2 + sum_t g[t]^2)

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
  along the split rates this target", in score units, and ``FACTOR_THRESHOLD`` is a
  threshold in those units.
* sign: ``f`` and ``g`` can both be negated.  We negate them if needed so that the
  target with the largest ``|g|`` (lowest index on ties) has ``g > 0``.  Which side is
  "positive" is therefore arbitrary but reproducible; compare fits sign-invariantly
  (see :mod:`raters.compare`).

Status of a target (``support`` = sum of the weights of the raters who rated it; with
unit weights it is the number of raters):

* ``"insufficient"``: ``support < MIN_RATERS``;
* ``"bridging"``: enough support, ``c[t] >= BRIDGING_THRESHOLD`` and
  ``|g[t]| < FACTOR_THRESHOLD``;
* ``"divisive"``: enough support and not bridging (the sides disagree,
  ``|g| >= FACTOR_THRESHOLD``, or the shared approval is below the threshold).

Constants:
    INTERCEPT_REG = 0.15, FACTOR_REG = 0.03: L2 penalties (see above).
    MIN_RATERS = 5.0: minimum support for a decided status.
    BRIDGING_THRESHOLD = 0.40: minimum target intercept for "bridging" (score units).
    FACTOR_THRESHOLD = 0.50: maximum |target factor| for "bridging".
    NEGATIVE_THRESHOLD = -0.40: a target with enough support, ``c <= -0.40`` and
        ``|g| < FACTOR_THRESHOLD`` is "clearly rejected" (used by rater standing).
    MAX_ITER = 500, TOL = 1e-6: ALS stops when no parameter moved more than TOL in an
        iteration, or after MAX_ITER iterations.
    INIT_SEED = 0, INIT_SCALE = 0.1: cold start draws ``f`` and ``g`` from
        ``N(0, INIT_SCALE^2)`` with ``numpy.random.default_rng(INIT_SEED)`` (raters'
        draws first, then targets'); intercepts start at 0 and ``mu`` at the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raters.ratings import BoolArray, FloatArray, IntArray, Ratings

INTERCEPT_REG = 0.15
FACTOR_REG = 0.03
MIN_RATERS = 5.0
BRIDGING_THRESHOLD = 0.40
FACTOR_THRESHOLD = 0.50
NEGATIVE_THRESHOLD = -0.40
MAX_ITER = 500
TOL = 1e-6
INIT_SEED = 0
INIT_SCALE = 0.1

STATUS_BRIDGING = "bridging"
STATUS_DIVISIVE = "divisive"
STATUS_INSUFFICIENT = "insufficient"


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
        status: tuple of n_targets strings, "bridging" / "divisive" / "insufficient".
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

    def rejected(self) -> BoolArray:
        """Targets clearly rejected by both sides.

        Output: bool (n_targets,): support >= MIN_RATERS, intercept <=
        NEGATIVE_THRESHOLD and |factor| < FACTOR_THRESHOLD.
        """
        return np.asarray(
            (self.target_support >= MIN_RATERS)
            & (self.target_intercept <= NEGATIVE_THRESHOLD)
            & (np.abs(self.target_factor) < FACTOR_THRESHOLD)
        )


def classify(
    intercept: npt.ArrayLike, factor: npt.ArrayLike, support: npt.ArrayLike
) -> tuple[str, ...]:
    """Status of each target from its intercept, factor and support.

    Inputs: float arrays of equal length (see module doc for the rules and constants).
    Output: tuple of "bridging" / "divisive" / "insufficient", one per target.
    """
    c = np.asarray(intercept, dtype=np.float64)
    g = np.asarray(factor, dtype=np.float64)
    n = np.asarray(support, dtype=np.float64)
    enough = n >= MIN_RATERS
    bridging = enough & (c >= BRIDGING_THRESHOLD) & (np.abs(g) < FACTOR_THRESHOLD)
    out = np.where(
        ~enough, STATUS_INSUFFICIENT, np.where(bridging, STATUS_BRIDGING, STATUS_DIVISIVE)
    )
    return tuple(str(x) for x in out)


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
    4. ``f *= a``, ``g /= a`` with ``a^4 = |g|^2 / |f|^2``.
    """
    nt_r = int(rated_t.sum())
    nr_r = int(rated_r.sum())
    if nt_r == 0 or nr_r == 0:
        return mu
    for _ in range(2):
        dc = float(c[rated_t].mean())
        db = float(b[rated_r].mean())
        c[rated_t] -= dc
        b[rated_r] -= db
        mu += dc + db
        den = FACTOR_REG * nt_r + INTERCEPT_REG * float(f @ f)
        d = (INTERCEPT_REG * float(b @ f) - FACTOR_REG * float(g[rated_t].sum())) / den
        g[rated_t] += d
        b -= f * d
        den = FACTOR_REG * nr_r + INTERCEPT_REG * float(g @ g)
        d = (INTERCEPT_REG * float(c @ g) - FACTOR_REG * float(f[rated_r].sum())) / den
        f[rated_r] += d
        c -= g * d
        nf, ng = float(f @ f), float(g @ g)
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
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> BridgingFit:
    """Fit the one-factor bridging model by alternating least squares.

    Inputs:
        ratings: canonical :class:`Ratings` (scores in [-1, 1]).
        weights: optional float array (n_raters,) of non-negative rater weights
            (e.g. :attr:`raters.standing.Standing.weight` for the second pass); default 1.
            A rater with weight 0 has no influence and gets zero parameters.
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
        a00 = np.bincount(r, weights=wr, minlength=nr) + INTERCEPT_REG
        a01 = np.bincount(r, weights=wg, minlength=nr)
        a11 = np.bincount(r, weights=wg * gt, minlength=nr) + FACTOR_REG
        b0 = np.bincount(r, weights=wr * y, minlength=nr)
        b1 = np.bincount(r, weights=wg * y, minlength=nr)
        b_new, f_new = _solve2(a00, a01, a11, b0, b1)
        # Global intercept.
        resid = s - b_new[r] - c_new[t] - f_new[r] * gt
        mu_new = float((wr * resid).sum() / wsum) if wsum > 0 else 0.0
        mu_new = _gauge(mu_new, b_new, f_new, c_new, g_new, rated_r, rated_t)

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
        (wr * resid * resid).sum() + INTERCEPT_REG * (b @ b + c @ c) + FACTOR_REG * (f @ f + g @ g)
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
    return BridgingFit(
        global_intercept=mu,
        rater_intercept=b,
        rater_factor=f,
        target_intercept=c,
        target_factor=g,
        target_support=support,
        target_raters=raters_count.astype(np.int64),
        status=classify(c, g, support),
        iterations=iterations,
        converged=converged,
        loss=loss,
    )
