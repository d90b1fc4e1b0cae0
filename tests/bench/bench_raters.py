"""Benchmark of the raters package.

Run: ``python tests/bench/bench_raters.py [--json FILE]`` (prints a JSON report), or call
:func:`run_bench` (``forum bench raters``).

Sections:

* ``bridging_1m``: :func:`raters.bridging.fit_bridging` on 1,000,000 synthetic ratings
  (50,000 raters x 20,000 targets, two factions; target < 30 s);
* ``pipeline_1m``: :func:`raters.pipeline.compute_scores` (both passes, standing, groups)
  on the same ratings;
* ``groups_2000x200``: :func:`raters.groups.opinion_groups` on 2,000 raters x 200
  targets, half the cells voted (target < 1 s);
* ``polis``: opinion groups on the six Polis conversations in ``tests/data/polis``
  (skipped if the folder is absent): time and adjusted Rand index against Polis'
  ``group-id``, beside red-dwarf (``pip install red-dwarf``; skipped if not installed)
  run on the same votes.

Each section reports wall time (``time.perf_counter``) and the peak of memory traced by
``tracemalloc`` during the section (NumPy arrays included); the report also gives the
process' peak resident set size (``resource.getrusage``) and the machine's CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from raters.bridging import fit_bridging  # noqa: E402
from raters.groups import opinion_groups  # noqa: E402
from raters.pipeline import ALGORITHM, VERSION, compute_scores  # noqa: E402
from raters.polis import parse_participants_votes  # noqa: E402
from raters.ratings import Ratings  # noqa: E402
from raters.synthetic import KIND_BRIDGING, two_factions  # noqa: E402

POLIS_DIR = ROOT / "tests" / "data" / "polis"
Progress = Callable[[str], None] | None


def _measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run fn; return (result, wall seconds, traced peak MiB)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, wall, peak / 2**20


def _say(progress: Progress, msg: str) -> None:
    if progress is not None:
        progress(msg)


def bench_bridging(progress: Progress = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bridging fit and full pipeline on 1M synthetic ratings."""
    _say(progress, "generating 1,000,000 ratings (50,000 x 20,000)")
    d = two_factions(50_000, 20_000, 1_000_000, seed=0)
    ratings, t_build, m_build = _measure(
        lambda: Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    )
    _say(progress, "fitting bridging model")
    fit, wall, peak = _measure(lambda: fit_bridging(ratings))
    status = np.asarray(fit.status)
    bridging_kind = d.kind == KIND_BRIDGING
    bridging = {
        "n_ratings": ratings.n_ratings,
        "n_raters": ratings.n_raters,
        "n_targets": ratings.n_targets,
        "build_seconds": round(t_build, 3),
        "build_peak_mib": round(m_build, 1),
        "seconds": round(wall, 3),
        "peak_mib": round(peak, 1),
        "iterations": fit.iterations,
        "converged": fit.converged,
        "target_seconds": 30.0,
        "bridging_recall": float((status[bridging_kind] == "bridging").mean()),
        "false_bridging": int((status[~bridging_kind] == "bridging").sum()),
    }
    _say(progress, "running the full pipeline")
    res, wall, peak = _measure(lambda: compute_scores(ratings))
    pipeline = {
        "seconds": round(wall, 3),
        "peak_mib": round(peak, 1),
        "standing_applied": res.standing_applied,
        "groups_k": res.groups.k,
        "clustered_raters": int((res.groups.labels >= 0).sum()),
    }
    return bridging, pipeline


def bench_groups(progress: Progress = None) -> dict[str, Any]:
    """Opinion groups on a 2,000 x 200 vote matrix, half the cells voted."""
    _say(progress, "opinion groups on 2,000 x 200")
    d = two_factions(2_000, 200, 200_000, seed=1)
    votes = np.where(np.abs(d.score) < 0.2, 0.0, np.sign(d.score))
    ratings = Ratings.build(d.rater, d.target, votes, d.n_raters, d.n_targets)
    g, wall, peak = _measure(lambda: opinion_groups(ratings))
    from sklearn.metrics import adjusted_rand_score

    return {
        "n_raters": 2_000,
        "n_targets": 200,
        "n_votes": ratings.n_ratings,
        "seconds": round(wall, 3),
        "peak_mib": round(peak, 1),
        "target_seconds": 1.0,
        "k": g.k,
        "ari_vs_factions": round(float(adjusted_rand_score(d.faction, g.labels)), 4),
    }


def _ari(reference: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    from sklearn.metrics import adjusted_rand_score

    both = (reference >= 0) & (labels >= 0)
    return float(adjusted_rand_score(reference[both], labels[both])), int(both.sum())


def _red_dwarf(conv: Any) -> dict[str, Any]:
    try:
        from reddwarf.implementations.polis import run_pipeline
    except ImportError:
        return {"skipped": "red-dwarf is not installed"}
    r = conv.ratings
    votes = [
        {"participant_id": int(u), "statement_id": int(t), "vote": float(s), "modified": 0}
        for u, t, s in zip(r.rater, r.target, r.score, strict=True)
    ]
    out, wall, peak = _measure(lambda: run_pipeline(votes=votes, random_state=0))
    labels = np.full(r.n_raters, -1, dtype=np.int64)
    df = out.participants_df
    for pid, lab in zip(df.index, df["cluster_id"], strict=True):
        if lab is not None and not (isinstance(lab, float) and np.isnan(lab)):
            try:
                labels[int(pid)] = int(lab)
            except (TypeError, ValueError):
                continue
    ari, n = _ari(conv.group_id, labels)
    return {
        "seconds": round(wall, 3),
        "peak_mib": round(peak, 1),
        "k": len(set(labels[labels >= 0].tolist())),
        "ari": round(ari, 3),
        "ari_raters": n,
    }


def bench_polis(progress: Progress = None) -> dict[str, Any]:
    """Our opinion groups and red-dwarf's on the six Polis conversations."""
    if not POLIS_DIR.is_dir():
        return {"skipped": f"{POLIS_DIR} not found"}
    out: dict[str, Any] = {}
    for path in sorted(p for p in POLIS_DIR.iterdir() if p.is_dir()):
        _say(progress, f"polis: {path.name}")
        conv = parse_participants_votes((path / "participants-votes.csv").read_text())
        g, wall, peak = _measure(partial(opinion_groups, conv.ratings))
        ari, n = _ari(conv.group_id, g.labels)
        out[path.name] = {
            "participants": conv.ratings.n_raters,
            "comments": conv.ratings.n_targets,
            "votes": conv.ratings.n_ratings,
            "polis_grouped": int((conv.group_id >= 0).sum()),
            "polis_k": len(set(conv.group_id[conv.group_id >= 0].tolist())),
            "ours": {
                "seconds": round(wall, 3),
                "peak_mib": round(peak, 1),
                "clustered": int((g.labels >= 0).sum()),
                "k": g.k,
                "silhouette_by_k": {k: round(v, 3) for k, v in g.silhouette_by_k.items()},
                "ari": round(ari, 3),
                "ari_raters": n,
            },
            "red_dwarf": _red_dwarf(conv),
        }
    return out


def run_bench(progress: Progress = None) -> dict[str, Any]:
    """Run every benchmark section and return the JSON-ready report.

    ``progress``: optional callable receiving one human-readable line per step.
    """
    try:
        from importlib.metadata import version

        red_dwarf_version: str | None = version("red-dwarf")
    except Exception:
        red_dwarf_version = None
    bridging, pipeline = bench_bridging(progress)
    report: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "version": VERSION,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "red_dwarf": red_dwarf_version,
        },
        "bridging_1m": bridging,
        "pipeline_1m": pipeline,
        "groups_2000x200": bench_groups(progress),
        "polis": bench_polis(progress),
    }
    report["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: print the report; ``--json FILE`` also writes it to FILE."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    args = ap.parse_args(argv)
    report = run_bench(progress=lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
