"""Turn a :class:`forum.scores.ledger.Ledger` into published scores (pure, no I/O).

Two documents, each stamped with the log position it was computed from:

* the **cheap** document (``as_of_seq``): counts, means, shrunk means,
  per-criterion means and rating histograms: exact and recomputed with every
  committed batch;
* both state ``remedies``: the agents whose ratings were left out (under an upheld
  verdict, docs/arbitration.md 3.5) and the seq of the arbitration they come from;
* the **fitted** document (``fit_as_of_seq``): bridging (matrix factorization,
  two passes with rater standing), protected means, statuses, opinion groups and
  outcome summaries (whose community credibility needs rater standing):
  recomputed in the background.

Index spaces are the sorted did:keys of raters, sorted target ids and sorted
criterion names, so anyone replaying the export gets the same arrays, and the
raw results (``Aggregates.to_dict`` / ``ScoreResult.to_dict``) can be compared
with :func:`raters.compare.compare_results`. :func:`target_view` merges both
documents into the per-target score a client reads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from forum.scores.communities import communities_section
from forum.scores.ledger import Ledger
from raters.aggregate import CriterionScores
from raters.bridging import BridgingFit
from raters.outcomes import UNENDORSED_BUDGET, community_credibility, summarize_outcomes
from raters.pipeline import ALGORITHM, VERSION, ScoreResult, compute_aggregates, compute_scores
from raters.ratings import Ratings

if TYPE_CHECKING:
    from forum.scores.checkpoints import StatusReference

HISTOGRAM_EDGES = (-0.6, -0.2, 0.2, 0.6)
"""Five rating bins: [-1,-0.6) [-0.6,-0.2) [-0.2,0.2) [0.2,0.6) [0.6,1]."""


@dataclass(frozen=True)
class Inputs:
    as_of_seq: int
    raters: list[str]
    targets: list[str]
    criteria: list[str]
    ratings: Ratings
    criterion_scores: CriterionScores
    target_kinds: dict[str, str]
    age: np.ndarray


def inputs_from_ledger(ledger: Ledger) -> Inputs:
    """Arrays for the raters from the ledger's current ratings."""
    rows = ledger.current_ratings()
    raters = sorted({r for r, _, _ in rows})
    targets = sorted({t for _, t, _ in rows})
    criteria = sorted({c for _, _, e in rows for c, _ in e.criteria})
    ri = {d: i for i, d in enumerate(raters)}
    ti = {t: i for i, t in enumerate(targets)}
    ci = {c: i for i, c in enumerate(criteria)}
    ratings = Ratings.build(
        np.fromiter((ri[r] for r, _, _ in rows), np.int64, len(rows)),
        np.fromiter((ti[t] for _, t, _ in rows), np.int64, len(rows)),
        np.fromiter((e.score for _, _, e in rows), np.float64, len(rows)),
        len(raters),
        len(targets),
    )
    ct, cc, cs = [], [], []
    for _, t, e in rows:
        for c, s in e.criteria:
            ct.append(ti[t])
            cc.append(ci[c])
            cs.append(s)
    crit = CriterionScores(np.asarray(ct, np.int64), np.asarray(cc, np.int64), np.asarray(cs, np.float64), len(criteria))
    kinds = {t: ledger.target_kinds.get(t, "agent" if t.startswith("did:") else "event") for t in targets}
    age = np.fromiter((ledger.age(d) for d in raters), np.int64, len(raters))
    return Inputs(ledger.head, raters, targets, criteria, ratings, crit, kinds, age)


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def summary_dict(summary: Any) -> dict[str, Any]:
    d = dataclasses.asdict(summary)
    d["by_status"] = dict(summary.by_status)
    d["by_verdict"] = dict(summary.by_verdict)
    d["success_rate"] = _num(summary.success_rate)
    d["metrics"] = [{k: (_num(v) if isinstance(v, float) else v) for k, v in m.items()} for m in d["metrics"]]
    return d


def cheap_document(ledger: Ledger, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The exact aggregates of the ledger as of its head.

    ``previous``: the last cheap document, whose "communities like yours" section is
    reused while no profile, adoption, outcome or retraction came in since.
    """
    inp = inputs_from_ledger(ledger)
    agg = compute_aggregates(inp.ratings, inp.criterion_scores)
    hist = np.zeros((inp.ratings.n_targets, len(HISTOGRAM_EDGES) + 1), np.int64)
    if inp.ratings.n_ratings:
        bins = np.searchsorted(np.asarray(HISTOGRAM_EDGES), inp.ratings.score, side="right")
        np.add.at(hist, (inp.ratings.target, bins), 1)
    return {
        "as_of_seq": inp.as_of_seq,
        "algorithm": ALGORITHM,
        "version": VERSION,
        "raters": inp.raters,
        "targets": inp.targets,
        "target_kinds": [inp.target_kinds[t] for t in inp.targets],
        "criteria": inp.criteria,
        "aggregates": agg.to_dict(),
        "histogram": hist.tolist(),
        "histogram_edges": list(HISTOGRAM_EDGES),
        "communities": communities_section(ledger, (previous or {}).get("communities")),
        "remedies": ledger.remedies_section(),
    }


def outcome_summaries(ledger: Ledger, inp: Inputs, result: ScoreResult | None) -> dict[str, Any]:
    """Every proposal's outcome summary, with community credibility (raters/outcomes.py).

    Credibility of a reporting community: its age in the log (report seq minus its
    first profile's seq) and its endorsement (sum of standing weight x score over the
    current ratings of its did:key and of its reports; raters without standing add 0).
    """
    weight: dict[str, float] = {}
    if result is not None:
        weight = {d: float(w) for d, w in zip(inp.raters, result.standing.weight, strict=True)}
    owner: dict[str, str] = {}
    for community, ids in ledger.reports_by().items():
        owner[community] = community
        for eid in ids:
            owner[eid] = community
    endorsement: dict[str, float] = {}
    for rater, target, entry in ledger.current_ratings():
        q = owner.get(target)
        if q is not None and rater != q:
            endorsement[q] = endorsement.get(q, 0.0) + weight.get(rater, 0.0) * entry.score
    out = {}
    for p in ledger.proposals_with_outcomes():
        reports = ledger.outcome_reports(p)
        latest: dict[str, int] = {}
        for r in reports:
            latest[r["community"]] = max(latest.get(r["community"], 0), r["seq"])
        share = UNENDORSED_BUDGET / max(1, len(latest))
        cred = {
            q: community_credibility(seq - ledger.community_since.get(q, seq), endorsement.get(q, 0.0), share)
            for q, seq in latest.items()
        }
        summary = summarize_outcomes(reports, credibility=cred, author=ledger.proposal_author.get(p))
        d = summary_dict(summary)
        d["credibility"] = {q: round(c, 12) for q, c in sorted(cred.items())}
        out[p] = d
    return out


def implicit_agreement(ledger: Ledger, inp: Inputs) -> Ratings | None:
    """The ratings plus each proposal author's implicit +1 on their own proposal.

    Only for the opinion groups (Polis counts an author's agreement with their own
    comment), only for proposals that someone rated, and only for authors who rate
    (are in the rater index).  None when no such pair exists.
    """
    ri = {d: i for i, d in enumerate(inp.raters)}
    extra_r, extra_t = [], []
    for j, t in enumerate(inp.targets):
        a = ledger.proposal_author.get(t)
        if a is not None and a in ri:
            extra_r.append(ri[a])
            extra_t.append(j)
    if not extra_r:
        return None
    r = inp.ratings
    # ratings are canonical (one per pair); an author cannot rate their own proposal
    return Ratings.build(
        np.r_[r.rater, np.asarray(extra_r, np.int64)],
        np.r_[r.target, np.asarray(extra_t, np.int64)],
        np.r_[r.score, np.ones(len(extra_r))],
        r.n_raters,
        r.n_targets,
    )


def fitted_document(
    ledger: Ledger, init: BridgingFit | None = None, reference: StatusReference | None = None
) -> tuple[dict[str, Any], ScoreResult]:
    """Bridging, standing, protected means, groups and outcomes as of the ledger's head.

    ``reference``: the statuses at the last status checkpoint ``<=`` the ledger's head
    (forum/scores/checkpoints.py): each status keeps its reference within the
    hysteresis margin; published as ``status_reference``.  None: no checkpoint yet.
    """
    inp = inputs_from_ledger(ledger)
    if inp.ratings.n_ratings == 0:
        doc = {"fit_as_of_seq": inp.as_of_seq, "algorithm": ALGORITHM, "version": VERSION, "raters": [], "targets": [], "result": None,
               "remedies": ledger.remedies_section()}  # fmt: skip
        doc["status_reference"] = _reference(reference, [])
        doc["outcomes"] = outcome_summaries(ledger, inp, None)
        return doc, None  # type: ignore[return-value]
    use_init = init if init is not None and _same_shape(init, inp) else None
    prev = (
        tuple(reference.status.get(t) for t in inp.targets)
        if reference is not None and reference.status
        else None
    )
    result = compute_scores(
        inp.ratings,
        inp.criterion_scores,
        init=use_init,
        previous=prev,
        groups_extra=implicit_agreement(ledger, inp),
        age=inp.age,
    )
    return {
        "fit_as_of_seq": inp.as_of_seq,
        "algorithm": ALGORITHM,
        "version": VERSION,
        "raters": inp.raters,
        "targets": inp.targets,
        "result": result.to_dict(include_raters=True),
        "status_reference": _reference(reference, inp.targets),
        "outcomes": outcome_summaries(ledger, inp, result),
        "remedies": ledger.remedies_section(),
    }, result


def _reference(reference: StatusReference | None, targets: list[str]) -> dict[str, Any]:
    if reference is None:
        return {"as_of_seq": 0, "status": [None] * len(targets)}
    return reference.to_dict(targets)


def _same_shape(fit: BridgingFit, inp: Inputs) -> bool:
    return len(fit.rater_intercept) == inp.ratings.n_raters and len(fit.target_intercept) == inp.ratings.n_targets


def target_view(target: str, cheap: dict[str, Any] | None, fitted: dict[str, Any] | None, index: dict[str, Any]) -> dict[str, Any] | None:
    """The per-target score clients read (``GET /api/v1/scores/{target}``, SCORES frames)."""
    ci = index.get("cheap", {}).get(target)
    fitted_outcomes = (fitted or {}).get("outcomes") or {}
    if cheap is None or (ci is None and target not in fitted_outcomes):
        return None
    out: dict[str, Any] = {
        "target": target,
        "as_of_seq": cheap["as_of_seq"],
        "algorithm": cheap["algorithm"],
        "version": cheap["version"],
        "count": 0,
        "mean": None,
        "shrunk_mean": None,
        "criteria": {},
        "histogram": [0] * (len(HISTOGRAM_EDGES) + 1),
        "protected": None,
        "bridging": None,
        "groups": None,
        "outcomes": fitted_outcomes.get(target),
    }
    if ci is not None:
        agg = cheap["aggregates"]
        out["kind"] = cheap["target_kinds"][ci]
        out["count"] = agg["count"][ci]
        out["mean"] = agg["mean"][ci]
        out["shrunk_mean"] = agg["shrunk_mean"][ci]
        out["histogram"] = cheap["histogram"][ci]
        if agg["criteria"] is not None:
            out["criteria"] = {
                name: {"count": agg["criteria"]["count"][ci][j], "mean": agg["criteria"]["mean"][ci][j]}
                for j, name in enumerate(cheap["criteria"])
                if agg["criteria"]["count"][ci][j]
            }
    out.update(fitted_part(target, fitted, index))
    return out


def fitted_part(target: str, fitted: dict[str, Any] | None, index: dict[str, Any]) -> dict[str, Any]:
    """The fitted fields of a target's view: ``protected``, ``bridging``, ``groups`` and
    ``outcomes`` (None when not fitted)."""
    out: dict[str, Any] = {"protected": None, "bridging": None, "groups": None, "outcomes": ((fitted or {}).get("outcomes") or {}).get(target)}
    fi = index.get("fitted", {}).get(target)
    if fitted is not None and fitted.get("result") is not None and fi is not None:
        res = fitted["result"]
        b = res["bridging"]
        out["bridging"] = {
            "score": b["target_intercept"][fi],
            "factor": b["target_factor"][fi],
            "status": b["status"][fi],
            "side_low": b["side_low"][fi],
            "side_high": b["side_high"][fi],
            "raters": b["target_raters"][fi],
            "fit_as_of_seq": fitted["fit_as_of_seq"],
        }
        p = res["protected"]
        out["protected"] = {
            "mean": p["mean"][fi],
            "shrunk_mean": p["shrunk_mean"][fi],
            "weight": p["weight"][fi],
            "fit_as_of_seq": fitted["fit_as_of_seq"],
        }
        g = res["groups"]
        if g["k"]:
            out["groups"] = {
                "means": {str(k): g["mean"][k][fi] for k in range(g["k"])},
                "votes": {str(k): g["agree"][k][fi] + g["disagree"][k][fi] + g["pass"][k][fi] for k in range(g["k"])},
                "consensus": g["consensus"][fi],
                "fit_as_of_seq": fitted["fit_as_of_seq"],
            }
    return out


def build_index(cheap: dict[str, Any] | None, fitted: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "cheap": {t: i for i, t in enumerate(cheap["targets"])} if cheap else {},
        "fitted": {t: i for i, t in enumerate(fitted["targets"])} if fitted else {},
    }


def groups_document(fitted: dict[str, Any] | None) -> dict[str, Any]:
    """Every opinion group with its member did:keys and per-target means (GET /api/v1/groups)."""
    if not fitted or fitted.get("result") is None:
        return {"fit_as_of_seq": fitted["fit_as_of_seq"] if fitted else 0, "k": 0, "groups": []}
    g = fitted["result"]["groups"]
    labels = g["labels"]
    groups = []
    for k in range(g["k"]):
        groups.append(
            {
                "id": k,
                "size": g["sizes"][k],
                "members": [d for d, lab in zip(fitted["raters"], labels, strict=True) if lab == k],
                "means": {t: g["mean"][k][i] for i, t in enumerate(fitted["targets"]) if g["mean"][k][i] is not None},
                "representative": [
                    {**r, "target": fitted["targets"][r["target"]]} for r in g["repness"][k]
                ],
            }
        )
    return {
        "fit_as_of_seq": fitted["fit_as_of_seq"],
        "algorithm": fitted["algorithm"],
        "version": fitted["version"],
        "k": g["k"],
        "silhouette": g["silhouette"],
        "groups": groups,
    }
