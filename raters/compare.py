"""Compare two published score results (for ``forum verify``).

Both sides are the JSON form :meth:`raters.pipeline.ScoreResult.to_dict` (or
:meth:`raters.pipeline.Aggregates.to_dict` for the cheap part); ScoreResult / Aggregates
objects are converted first.  Rules:

* **exact**: algorithm, version, sizes, every count (ratings, criterion counts, group
  vote counts and sizes), number of groups ``k``, list lengths, None-ness;
* ``AGGREGATE_TOL = 1e-9`` (absolute) for deterministic floats: means, shrunk means,
  global mean, per-criterion means.  They are exact up to floating-point summation
  order, which may differ if the verifier sums in another order (e.g. in SQL);
* ``FIT_TOL = 0.02`` (absolute) for fitted values: global, target and rater intercepts;
  target and rater factors, compared **up to one global sign** (the side that is
  "positive" may flip between fits; the sign giving the smaller difference is used);
  target support; standing weights and agreement; group means, consensus and
  silhouette.  Fits are reproducible to ~1e-6 from a cold start; the tolerance covers
  warm starts and other BLAS / library versions;
* ``FIT_TOL`` also for the side figures (``side_low``, ``side_high``, ``side_mid``,
  ``side_support``) and for the **protected** aggregates (their weights come from the
  fit's standing);
* **statuses**: equal, except that a target whose status differs is accepted when one
  of its figures is within FIT_TOL + HYSTERESIS of a threshold it is tested against
  (side figures vs SUPPORT_LEVEL, 0, REJECT_LEVEL, +-SPLIT_LEVEL; support vs MIN_RATERS;
  side support vs SIDE_MIN), where a tolerated difference can flip the status;
* **group labels** (when present on both sides): adjusted Rand index >=
  ``LABELS_MIN_ARI = 0.95`` over raters clustered on both sides, and the same set of
  clustered raters; the group sizes and vote counts follow from the labels and are then
  not compared (without labels they are compared exactly); group means use FIT_TOL;
* representative targets, diagnostics (iterations, converged, loss, n_decided,
  n_agree, coordinates) are not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

from raters.bridging import (
    HYSTERESIS,
    MIN_RATERS,
    REJECT_LEVEL,
    SIDE_MIN,
    SPLIT_LEVEL,
    SUPPORT_LEVEL,
)
from raters.pipeline import Aggregates, ScoreResult

AGGREGATE_TOL = 1e-9
FIT_TOL = 0.02
LABELS_MIN_ARI = 0.95

_EXACT = {
    "algorithm", "version", "n_raters", "n_targets", "n_ratings", "count", "k", "sizes",
    "agree", "disagree", "pass", "prior_strength", "standing_applied", "target_raters",
}  # fmt: skip
_AGG = {"mean", "shrunk_mean", "global_mean"}
_FIT = {
    "global_intercept", "target_intercept", "rater_intercept", "target_support",
    "weight", "agreement", "consensus", "silhouette", "side_low", "side_high", "side_mid",
    "side_support",
}  # fmt: skip
_GROUP_COUNTS = {"sizes", "agree", "disagree", "pass"}
_SIGNED = {"target_factor", "rater_factor"}
_SKIP = {
    "iterations", "converged", "loss", "n_decided", "n_agree", "coords", "repness",
    "silhouette_by_k",
}  # fmt: skip


@dataclass(frozen=True)
class Difference:
    """One disagreement: path (e.g. "bridging.status[3]"), expected, actual, and the
    tolerance that was exceeded (0.0 for exact fields)."""

    path: str
    expected: Any
    actual: Any
    tolerance: float


def _floats(a: Any) -> np.ndarray:
    arr = np.array(a, dtype=object)
    out = np.full(arr.shape, np.nan)
    mask = arr != None  # noqa: E711 - elementwise comparison on an object array
    out[mask] = arr[mask].astype(np.float64)
    return out


def _cmp_num(path: str, e: Any, a: Any, tol: float, out: list[Difference]) -> None:
    ea, aa = _floats(e), _floats(a)
    if ea.shape != aa.shape:
        out.append(Difference(path + ".shape", list(ea.shape), list(aa.shape), 0.0))
        return
    both_nan = np.isnan(ea) & np.isnan(aa)
    diff = np.abs(ea - aa)
    bad = ~both_nan & ~(diff <= tol)
    for idx in zip(*np.nonzero(bad), strict=True) if ea.ndim else ([()] if bad else []):
        i = tuple(int(x) for x in idx)
        sub = "".join(f"[{x}]" for x in i)
        out.append(Difference(path + sub, _py(ea[i]), _py(aa[i]), tol))


def _py(x: Any) -> Any:
    f = float(x)
    return None if np.isnan(f) else f


def _cmp_signed(path: str, e: Any, a: Any, out: list[Difference]) -> None:
    ea, aa = _floats(e), _floats(a)
    if ea.shape == aa.shape and ea.size:
        d_plus = np.nanmax(np.abs(ea - aa), initial=0.0)
        d_minus = np.nanmax(np.abs(ea + aa), initial=0.0)
        if d_minus < d_plus:
            aa = -aa
    _cmp_num(path, ea.tolist(), aa.tolist(), FIT_TOL, out)


def _cmp_status(exp_fit: Mapping[str, Any], act_fit: Mapping[str, Any], path: str,
                out: list[Difference]) -> None:  # fmt: skip
    es, as_ = list(exp_fit["status"]), list(act_fit["status"])
    if len(es) != len(as_):
        out.append(Difference(path + ".status.length", len(es), len(as_), 0.0))
        return
    margin = FIT_TOL + HYSTERESIS
    near = np.abs(_floats(exp_fit["target_support"]) - MIN_RATERS) <= FIT_TOL
    tests = {
        "side_low": (SUPPORT_LEVEL, 0.0, -SPLIT_LEVEL),
        "side_high": (REJECT_LEVEL, SPLIT_LEVEL),
        "side_mid": (SUPPORT_LEVEL,),
        "side_support": (SIDE_MIN,),
    }
    for key, levels in tests.items():
        if exp_fit.get(key) is not None:
            v = _floats(exp_fit[key])
            for level in levels:
                near |= np.abs(v - level) <= margin
    for i, (x, y) in enumerate(zip(es, as_, strict=True)):
        if x != y and not bool(near[i]):
            out.append(Difference(f"{path}.status[{i}]", x, y, 0.0))


def _walk(e: Any, a: Any, path: str, out: list[Difference]) -> None:
    key = path.rsplit(".", 1)[-1]
    if key in _SKIP:
        return
    if isinstance(e, Mapping) and isinstance(a, Mapping):
        with_labels = "labels" in e and "labels" in a
        for k in sorted(set(e) | set(a)):
            if path == "groups" and with_labels and k in _GROUP_COUNTS:
                continue  # implied by the labels, which are compared with a tolerance
            sub = f"{path}.{k}" if path else str(k)
            if k in _SKIP:
                continue
            if k not in e or k not in a:
                if k in ("labels", "standing", "rater_intercept", "rater_factor"):
                    continue  # per-rater data may be left out of either side
                out.append(Difference(sub, e.get(k), a.get(k), 0.0))
            elif k == "status" and "target_intercept" in e:
                _cmp_status(e, a, path, out)
            elif k == "labels":
                _cmp_labels(e[k], a[k], sub, out)
            else:
                _walk(e[k], a[k], sub, out)
        return
    if e is None or a is None:
        if not (e is None and a is None):
            out.append(Difference(path, e, a, 0.0))
        return
    if path == "groups.mean" or path.startswith("protected."):
        _cmp_num(path, e, a, FIT_TOL, out)
    elif key in _SIGNED:
        _cmp_signed(path, e, a, out)
    elif key in _FIT:
        _cmp_num(path, e, a, FIT_TOL, out)
    elif key in _AGG:
        _cmp_num(path, e, a, AGGREGATE_TOL, out)
    elif key in _EXACT or isinstance(e, str):
        if e != a:
            out.append(Difference(path, e, a, 0.0))
    elif isinstance(e, (int, float, list)):
        _cmp_num(path, e, a, AGGREGATE_TOL, out)
    elif e != a:
        out.append(Difference(path, e, a, 0.0))


def _cmp_labels(e: Any, a: Any, path: str, out: list[Difference]) -> None:
    el, al = np.asarray(e, dtype=np.int64), np.asarray(a, dtype=np.int64)
    if el.shape != al.shape or not np.array_equal(el >= 0, al >= 0):
        out.append(Difference(path + ".clustered", None, None, 0.0))
        return
    m = el >= 0
    if m.sum() > 1:
        ari = float(adjusted_rand_score(el[m], al[m]))
        if ari < LABELS_MIN_ARI:
            out.append(Difference(path + ".ari", 1.0, ari, 1.0 - LABELS_MIN_ARI))


def compare_results(
    expected: ScoreResult | Aggregates | Mapping[str, Any],
    actual: ScoreResult | Aggregates | Mapping[str, Any],
) -> list[Difference]:
    """All differences between two results beyond the documented tolerances.

    Inputs: the published result and the recomputed one, as result objects or their
    ``to_dict()`` JSON form (either with or without per-rater data).
    Output: list of :class:`Difference`, empty when the results agree.
    """
    ed = expected.to_dict() if isinstance(expected, (ScoreResult, Aggregates)) else expected
    ad = actual.to_dict() if isinstance(actual, (ScoreResult, Aggregates)) else actual
    out: list[Difference] = []
    _walk(ed, ad, "", out)
    return out


def results_match(
    expected: ScoreResult | Aggregates | Mapping[str, Any],
    actual: ScoreResult | Aggregates | Mapping[str, Any],
) -> bool:
    """True when :func:`compare_results` finds no difference."""
    return not compare_results(expected, actual)
