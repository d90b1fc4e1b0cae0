"""Polis opinion groups through the forum: import, wait for the fit, compare, time.

Run: ``python clients/bench/polis.py [--data DIR] [--only NAME]... [--mode
authors|matrix|both] [--json] [--out FILE]``.

For every conversation folder in ``--data`` (default: ``../shared/data/polis`` beside the
checkout if present, else ``tests/data/polis``), and each mode:

* ``authors``: the full export (comments.csv, votes.csv) imported as ``forum
  import-polis`` does: comments signed by their authors, so votes on one's own comment
  are skipped;
* ``matrix``: only ``participants-votes.csv`` (and summary.csv): one conversation key
  signs the comments, so every vote in Polis' matrix becomes a rating: the very votes
  of the pure-algorithm table in docs/raters.md;

the script starts a fresh forum (``python -m forum``, SQLite, data dir in a temporary
folder, rate limits off), signs and publishes the conversation through the SDK, waits
until the fitted scores reflect the whole log, reads ``/api/v1/groups``, maps did:key to
participant through the ``--map`` CSV and computes the adjusted Rand index against Polis'
``group-id``; then audits the forum with ``forum verify``'s :func:`verify_forum`.

Beside the forum's figure: ``raters`` run directly on the same votes, in Polis' order
(participant ids) and in the forum's order (participants by did:key, comments by event
id; the forum's own index order, so the labels must be identical), and on all of Polis'
votes in Polis' order (the docs table).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from clients.audit import verify_forum  # noqa: E402
from clients.importers.polis import (  # noqa: E402
    ari_against_polis,
    forum_labels,
    forum_order,
    load_conversation,
    plan_import,
    publish_plan,
    pure_labels,
    read_map,
    write_map,
)
from clients.launch import ForumProcess  # noqa: E402

SEED = "polis-through-forum"
SHARED = ROOT.parent / "shared" / "data" / "polis"
DEFAULT_DATA = SHARED if SHARED.is_dir() else ROOT / "tests" / "data" / "polis"
FORUM_SETTINGS = {
    "author_rate": 0,
    "address_rate": 0,
    "address_read_rate": 0,
    "scores_interval_s": 1.0,
    "scores_min_new_ratings": 5000,
}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return orjson.loads(r.read())


def wait_for_fit(url: str, limit: float = 1800) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        head = _get(url + "/healthz")["head_seq"]
        snap = _get(url + "/api/v1/scores:snapshot")
        fitted, cheap = snap["fitted"], snap["cheap"]
        if fitted and cheap and fitted["fit_as_of_seq"] == head == cheap["as_of_seq"]:
            return int(head)
        time.sleep(0.1)
    raise TimeoutError(f"the fitted scores of {url} did not reach the head in {limit} s")


def _round(x: float) -> float | None:
    return None if x != x else round(x, 3)


def run_one(folder: Path, mode: str, work: Path, progress: Any) -> dict[str, Any]:
    name = folder.name
    src = folder
    if mode == "matrix":
        src = work / "matrix" / name
        src.mkdir(parents=True)
        for f in ("participants-votes.csv", "summary.csv"):
            if (folder / f).is_file():
                shutil.copy(folder / f, src / f)
    conv = load_conversation(src, name)
    if mode == "authors" and conv.votes_source != "votes.csv":
        return {"skipped": f"{folder} has no votes.csv/comments.csv"}
    progress(f"{name} [{mode}]: signing")
    t0 = time.perf_counter()
    plan = plan_import(conv, SEED)
    t_sign = time.perf_counter() - t0
    map_file = work / f"{name}-{mode}-map.csv"
    write_map(plan, map_file)
    forum = ForumProcess(work / f"{name}-{mode}-forum", settings=FORUM_SETTINGS).start()
    try:
        progress(f"{name} [{mode}]: publishing {len(plan.proposals) + len(plan.ratings):,} events")
        result = asyncio.run(publish_plan(plan, forum.ws_url))
        t1 = time.perf_counter()
        progress(f"{name} [{mode}]: waiting for the fit")
        head = wait_for_fit(forum.url)
        t_fit = time.perf_counter() - t1
        groups = _get(forum.url + "/api/v1/groups")
        served = forum_labels(groups, read_map(map_file))
        progress(f"{name} [{mode}]: forum verify")
        t2 = time.perf_counter()
        report = asyncio.run(verify_forum(forum.url))
        t_verify = time.perf_counter() - t2
    finally:
        forum.stop()

    ari_forum, n_forum = ari_against_polis(served, conv.group_id)
    raters, comments = forum_order(plan, conv)
    same_order = pure_labels(conv, rater_order=raters, comment_order=comments)
    polis_order = pure_labels(conv)
    full_conv = load_conversation(folder, name) if mode == "authors" else conv
    all_votes = pure_labels(full_conv, expressible_only=False)
    ari_same, _ = ari_against_polis(same_order, conv.group_id)
    ari_polis, n_polis = ari_against_polis(polis_order, conv.group_id)
    ari_all, _ = ari_against_polis(all_votes, full_conv.group_id)
    return {
        "participants": len(conv.participants),
        "comments": len(plan.proposals),
        "ratings": len(plan.ratings),
        "skipped_self_votes": plan.skipped_self_votes,
        "refused": sum(result.refused.values()),
        "head_seq": head,
        "polis_grouped": len(conv.group_id),
        "forum": {
            "k": groups["k"],
            "clustered": len(served),
            "ari": _round(ari_forum),
            "ari_participants": n_forum,
        },
        "pure_forum_order": {
            "ari": _round(ari_same),
            "identical_to_forum": {p: g for p, g in same_order.items() if g >= 0} == served,
        },
        "pure_polis_order": {
            "ari": _round(ari_polis),
            "ari_participants": n_polis,
            "clustered": sum(1 for g in polis_order.values() if g >= 0),
        },
        "pure_all_polis_votes": {"ari": _round(ari_all)},
        "verify_ok": report.ok,
        "verify_findings": len(report.findings),
        "seconds": {
            "sign": round(t_sign, 2),
            "publish": round(result.seconds, 2),
            "fit_wait": round(t_fit, 2),
            "verify": round(t_verify, 2),
        },
        "events_per_second": round(
            (len(plan.proposals) + len(plan.ratings)) / max(result.seconds, 1e-9)
        ),
    }


def run(data: Path, only: list[str], modes: list[str], progress: Any) -> dict[str, Any]:
    folders = sorted(p for p in data.iterdir() if (p / "participants-votes.csv").is_file())
    if only:
        folders = [p for p in folders if p.name in only]
    out: dict[str, Any] = {
        "data": str(data),
        "seed": SEED,
        "forum_settings": FORUM_SETTINGS,
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="polis-forum-") as tmp:
        for folder in folders:
            for mode in modes:
                out["results"].setdefault(folder.name, {})[mode] = run_one(
                    folder, mode, Path(tmp), progress
                )
    return out


def table(report: dict[str, Any]) -> str:
    head = (
        "| conversation | mode | ratings (self-votes skipped) | clustered forum / pure | "
        "ARI forum | ARI pure, forum's order (identical) | ARI pure, Polis' order | "
        "ARI pure, all Polis votes | verify | sign / publish / fit wait / verify (s) |"
    )
    lines = [head, "|" + " --- |" * 10]
    for name, modes in report["results"].items():
        for mode, r in modes.items():
            if "skipped" in r:
                lines.append(f"| {name} | {mode} | {r['skipped']} |" + " |" * 7)
                continue
            s = r["seconds"]
            lines.append(
                f"| {name} | {mode} | {r['ratings']:,} ({r['skipped_self_votes']}) "
                f"| {r['forum']['clustered']} / {r['pure_polis_order']['clustered']} "
                f"| **{r['forum']['ari']}** "
                f"| {r['pure_forum_order']['ari']} ({'yes' if r['pure_forum_order']['identical_to_forum'] else 'NO'}) "
                f"| {r['pure_polis_order']['ari']} | {r['pure_all_polis_votes']['ari']} "
                f"| {'ok' if r['verify_ok'] else 'FAIL'} "
                f"| {s['sign']} / {s['publish']} / {s['fit_wait']} / {s['verify']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of Polis conversations")
    ap.add_argument(
        "--only", action="append", default=[], help="only this conversation (repeatable)"
    )
    ap.add_argument("--mode", choices=("authors", "matrix", "both"), default="both")
    ap.add_argument(
        "--json", action="store_true", help="print the JSON report instead of the table"
    )
    ap.add_argument("--out", type=Path, help="also write the JSON report to this file")
    args = ap.parse_args(argv)
    modes = ["authors", "matrix"] if args.mode == "both" else [args.mode]
    report = run(args.data, args.only, modes, lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text if args.json else table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
