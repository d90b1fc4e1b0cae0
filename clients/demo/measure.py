"""What the demo measures: accuracy checkpoints (with vs without the stream) and the report.

Definitions of every figure are in docs/demo.md.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import spearmanr

from clients.agent.model import Results

if TYPE_CHECKING:
    from clients.demo.sim import Demo


def checkpoint(demo: Demo, t: float) -> dict[str, Any]:
    err_with: list[np.ndarray] = []
    err_without: list[np.ndarray] = []
    err_crowd: list[np.ndarray] = []
    for m in demo.members:
        board = m.agent.board
        cols = [
            (i, demo.slug_index[demo.proposal_ids[pid]])
            for i, pid in enumerate(board.order)
            if pid in demo.proposal_ids and pid not in m.given
        ]
        if not cols:
            continue
        rows = np.array([c[0] for c in cols])
        truth_now = (
            demo.truth if m.owner.has_shifted(t / demo.config.duration) else demo.truth_before
        )
        truth = truth_now[m.owner.index, [c[1] for c in cols]]
        with_stream, _ = m.agent.predictions()
        without, _ = m.shadow.predict_all(board)
        err_with.append(np.abs(with_stream[rows] - truth))
        err_without.append(np.abs(without[rows] - truth))
        # The crowd's protected mean as everyone's prediction (the plain shrunk mean while
        # no fit covers the post yet, 0 while it has none).
        crowd = np.array([_crowd(board.results[board.order[i]]) for i in rows])
        err_crowd.append(np.abs(crowd - truth))
    pairs = int(sum(len(e) for e in err_with))
    point = {
        "t": round(t, 2),
        "pairs": pairs,
        "accuracy_with_stream": _accuracy(err_with),
        "accuracy_without_stream": _accuracy(err_without),
        "accuracy_crowd": _accuracy(err_crowd),
        "feedback": demo.counts.feedback,
        "ratings": demo.counts.ratings,
        "outcomes_completed": demo.counts.completed,
    }
    demo.curve.append(point)
    return point


async def report(demo: Demo) -> dict[str, Any]:
    listing = await asyncio.to_thread(
        demo.server.get_json, "/api/v1/scores?kind=proposal&limit=1000"
    )
    views = {v["target"]: v for v in listing["scores"] if v["target"] in demo.proposal_ids}
    slugs = [demo.proposal_ids[t] for t in views]
    util = np.array([demo.utility[demo.slug_index[s]] for s in slugs])
    effect = np.array([demo.proposals[demo.slug_index[s]].mean_effect for s in slugs])

    def corr(values: list[float | None], truth: np.ndarray) -> tuple[float | None, int]:
        keep = [i for i, v in enumerate(values) if v is not None]
        if len(keep) < 3:
            return None, len(keep)
        rho = spearmanr([values[i] for i in keep], truth[keep]).statistic
        return (None if not math.isfinite(rho) else round(float(rho), 4)), len(keep)

    shrunk = [v.get("shrunk_mean") for v in views.values()]
    bridging = [(v.get("bridging") or {}).get("score") for v in views.values()]
    measured = []
    for v in views.values():
        o = v.get("outcomes") or {}
        means = [m["mean"] for m in o.get("metrics", []) if m.get("mean") is not None]
        measured.append(float(np.mean(means)) if means else None)
    rank_corr, n_ranked = corr(shrunk, util)
    bridging_corr, n_bridged = corr(bridging, util)
    outcome_corr, n_tried = corr(measured, effect)
    final = demo.curve[-1] if demo.curve else {}
    order = sorted(views, key=lambda t: -(views[t].get("shrunk_mean") or -9))
    true_rank = {demo.proposals[i].slug: r + 1 for r, i in enumerate(np.argsort(-demo.utility))}
    from clients.demo import governance

    return {
        "statuses": status_check(demo, views),
        "governance": await governance.measure(demo),
        "seed": demo.config.seed,
        "agents": len(demo.members),
        "duration_s": demo.config.duration,
        "elapsed_s": round(demo.now(), 2),
        "interrupted": demo.interrupted,
        "rank_correlation": rank_corr,
        "rank_correlation_bridging": bridging_corr,
        "rank_correlation_outcomes": outcome_corr,
        "proposals_ranked": n_ranked,
        "proposals_bridged": n_bridged,
        "proposals_tried": n_tried,
        "accuracy_with_stream": final.get("accuracy_with_stream"),
        "accuracy_without_stream": final.get("accuracy_without_stream"),
        "accuracy_crowd": final.get("accuracy_crowd"),
        **shift_figures(demo),
        "curve": demo.curve,
        "counts": demo.counts.__dict__ | {"running": demo.counts.running},
        "refusals": demo.refusals,
        "top": [
            {
                "title": demo.proposals[demo.slug_index[demo.proposal_ids[t]]].title,
                "shrunk_mean": views[t].get("shrunk_mean"),
                "bridging": (views[t].get("bridging") or {}).get("score"),
                "true_rank": true_rank[demo.proposal_ids[t]],
            }
            for t in order[:10]
        ],
    }


POSITIVE = ("bridging", "broad_support")
GOOD_LEVEL = 0.3


def status_check(demo: Demo, views: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Do the labels tell the truth?  (issue 10)

    * ``broadly_good``: proposals the simulated truth calls broadly good (owners' mean
      true score >= +0.3 and at least two thirds of owners above 0) that the fit has
      labelled; ``broadly_good_positive``: of those, labelled bridging or broad support
      (target: at least half);
    * ``all_groups_above_split``: proposals that every opinion group rates above +0.3
      and that are labelled split (target: none).
    """
    by_status: dict[str, int] = {}
    good = good_positive = split_liked = 0
    for t, v in views.items():
        status = (v.get("bridging") or {}).get("status")
        if status is None:
            continue
        by_status[status] = by_status.get(status, 0) + 1
        i = demo.slug_index[demo.proposal_ids[t]]
        col = demo.truth[:, i]
        if status != "insufficient" and col.mean() >= GOOD_LEVEL and (col > 0).mean() >= 2 / 3:
            good += 1
            good_positive += status in POSITIVE
        means = [m for m in ((v.get("groups") or {}).get("means") or {}).values() if m is not None]
        if means and min(means) > GOOD_LEVEL and status == "split":
            split_liked += 1
    return {
        "by_status": dict(sorted(by_status.items())),
        "broadly_good": good,
        "broadly_good_positive": good_positive,
        "broadly_good_positive_share": round(good_positive / good, 3) if good else None,
        "all_groups_above_split": split_liked,
    }


def shift_figures(demo: Demo) -> dict[str, Any]:
    """Priority shifts and the agents' notices (docs/demo.md).

    ``shift_notice_delay``: the median, over the owners whose priorities shifted
    during the run, of the pieces of feedback they gave from the shift up to
    and including the one after which their agent raised its priority-shift
    notice (an owner never noticed counts as infinitely late: the median is
    null when most are missed); ``shift_false_notices``: priority-shift notices
    to owners who had not shifted (yet).
    """
    shifted = [m for m in demo.members if m.owner.has_shifted(demo.now() / demo.config.duration)]
    delays = sorted(m.noticed if m.noticed is not None else math.inf for m in shifted)
    median = float(np.median(delays)) if delays else None
    false = demo.counts.false_notices
    return {
        "shifted_owners": len(shifted),
        "shift_noticed": sum(m.noticed is not None for m in shifted),
        "shift_notice_delay": median if median is not None and math.isfinite(median) else None,
        "shift_false_notices": false,
        "shift_false_notices_per_100": round(100 * false / len(demo.members), 2)
        if demo.members
        else None,
    }


def _crowd(res: Results) -> float:
    if res.protected_mean is not None:
        return res.protected_mean
    return res.shrunk_mean or 0.0


def _accuracy(errors: list[np.ndarray]) -> float | None:
    if not errors:
        return None
    flat = np.concatenate(errors)
    return round(float(1.0 - flat.mean() / 2.0), 4) if flat.size else None
