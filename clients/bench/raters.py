"""Benchmark of the raters package (``forum bench raters``, ``python tests/bench/bench_raters.py``).

Unlike the rest of :mod:`raters`, this module measures time and memory and reads the
Polis CSV files; nothing in the forum imports it.

Sections:

* ``bridging_1m``: :func:`raters.bridging.fit_bridging` on 1,000,000 synthetic ratings
  (50,000 raters x 20,000 targets, two factions; target < 30 s);
* ``pipeline_1m``: :func:`raters.pipeline.compute_scores` (both passes, standing, groups)
  on the same ratings;
* ``groups_2000x200``: :func:`raters.groups.opinion_groups` on 2,000 raters x 200
  targets, half the cells voted (target < 1 s);
* ``polis``: opinion groups on the Polis conversations in ``polis_dir`` (one folder per
  conversation holding ``participants-votes.csv``; skipped when None or absent): time
  and adjusted Rand index against Polis' ``group-id``, beside red-dwarf
  (``pip install red-dwarf``; skipped if not installed) run on the same votes.

``scale`` multiplies the synthetic sizes (1.0 = the figures above; the targets are only
meaningful at 1.0).  Each section reports wall time (``time.perf_counter``) and the peak
of memory traced by ``tracemalloc`` during the section (NumPy arrays included); the
report also gives the process' peak resident set size (``resource.getrusage``) and the
machine's CPU count.
"""

from __future__ import annotations

import os
import platform
import resource
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from raters.bridging import fit_bridging
from raters.groups import opinion_groups
from raters.pipeline import ALGORITHM, VERSION, compute_scores
from raters.polis import parse_participants_votes
from raters.ratings import Ratings
from raters.synthetic import KIND_BRIDGING, two_factions

__all__ = ["SECTIONS", "Progress", "bench_steps", "polis_conversations", "run_bench"]

Progress = Callable[[str], None] | None
"""Called with one human-readable line at the start of every step (see :func:`bench_steps`)."""

SECTIONS = ("bridging", "groups", "polis")
"""Selectable parts: ``bridging`` (bridging_1m and pipeline_1m), ``groups``, ``polis``."""


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


def _sizes(scale: float) -> tuple[int, int, int]:
    return (
        max(20, round(50_000 * scale)),
        max(10, round(20_000 * scale)),
        max(100, round(1_000_000 * scale)),
    )


def bench_bridging(
    progress: Progress = None, scale: float = 1.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bridging fit and full pipeline on 1M synthetic ratings (times ``scale``)."""
    n_raters, n_targets, n_ratings = _sizes(scale)
    _say(progress, f"generating {n_ratings:,} ratings ({n_raters:,} x {n_targets:,})")
    d = two_factions(n_raters, n_targets, n_ratings, seed=0)
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


def bench_groups(progress: Progress = None, scale: float = 1.0) -> dict[str, Any]:
    """Opinion groups on a 2,000 x 200 vote matrix (times ``scale``), half the cells voted."""
    n_raters, n_targets = max(20, round(2_000 * scale)), max(10, round(200 * scale))
    n_votes = n_raters * n_targets // 2
    _say(progress, f"opinion groups on {n_raters:,} x {n_targets:,}")
    d = two_factions(n_raters, n_targets, n_votes, seed=1)
    votes = np.where(np.abs(d.score) < 0.2, 0.0, np.sign(d.score))
    ratings = Ratings.build(d.rater, d.target, votes, d.n_raters, d.n_targets)
    g, wall, peak = _measure(lambda: opinion_groups(ratings))
    from sklearn.metrics import adjusted_rand_score

    return {
        "n_raters": n_raters,
        "n_targets": n_targets,
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


def polis_conversations(polis_dir: Path | None) -> list[Path]:
    """The conversation folders (holding participants-votes.csv) in ``polis_dir``, sorted."""
    if polis_dir is None or not Path(polis_dir).is_dir():
        return []
    return sorted(p for p in Path(polis_dir).iterdir() if (p / "participants-votes.csv").is_file())


def bench_polis(polis_dir: Path | None, progress: Progress = None) -> dict[str, Any]:
    """Our opinion groups and red-dwarf's on the Polis conversations in ``polis_dir``."""
    paths = polis_conversations(polis_dir)
    if not paths:
        return {"skipped": f"no Polis conversations in {polis_dir}"}
    out: dict[str, Any] = {}
    for path in paths:
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
                "silhouette_by_k": {str(k): round(v, 3) for k, v in g.silhouette_by_k.items()},
                "ari": round(ari, 3),
                "ari_raters": n,
            },
            "red_dwarf": _red_dwarf(conv),
        }
    return out


def bench_steps(polis_dir: Path | None = None, sections: tuple[str, ...] = SECTIONS) -> int:
    """How many times :func:`run_bench` calls ``progress`` (for a progress bar's total)."""
    n = 0
    if "bridging" in sections:
        n += 3
    if "groups" in sections:
        n += 1
    if "polis" in sections:
        n += len(polis_conversations(polis_dir))
    return n


def run_bench(
    progress: Progress = None,
    *,
    polis_dir: Path | None = None,
    scale: float = 1.0,
    sections: tuple[str, ...] = SECTIONS,
) -> dict[str, Any]:
    """Run the benchmark sections and return the JSON-ready report.

    ``progress``: optional callable receiving one human-readable line per step;
    ``polis_dir``: folder of Polis conversations (None: the polis section is skipped);
    ``scale``: multiplies the synthetic sizes; ``sections``: a subset of :data:`SECTIONS`.
    """
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    try:
        from importlib.metadata import version

        red_dwarf_version: str | None = version("red-dwarf")
    except Exception:
        red_dwarf_version = None
    report: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "version": VERSION,
        "scale": scale,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "red_dwarf": red_dwarf_version,
        },
    }
    if "bridging" in sections:
        report["bridging_1m"], report["pipeline_1m"] = bench_bridging(progress, scale)
    if "groups" in sections:
        report["groups_2000x200"] = bench_groups(progress, scale)
    if "polis" in sections:
        report["polis"] = bench_polis(polis_dir, progress)
    report["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report
