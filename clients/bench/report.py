"""Bench reports: one JSON document per run, a short human summary, and side-by-side comparison.

A report is ``{"bench": "forum-bench", "version": 1, "mode": ..., "started_at",
"command", "machine", "server", "results"}``. ``compare`` flattens two
reports' numeric leaves (``results.phases.0.ok_latency.p99_ms``) and prints
A, B and B/A for each.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from clients.bench.stats import machine_info

REPORT_VERSION = 1

# The figures worth a line in the summary and at the top of a comparison, per mode.
HEADLINES: dict[str, list[str]] = {
    "ingest": [
        "results.accepted_per_s",
        "results.ok_latency.p50_ms",
        "results.ok_latency.p99_ms",
        "results.idle_effect.ratio",
        "results.versus.accepted_per_s",
        "results.versus.ratio",
        "results.versus.cpu_ratio",
        "results.versus.ok_latency.p99_ms",
        "results.versus.cpu_us_per_event.server",
        "results.cpu.client_cores",
        "results.cpu.server_cores",
        "results.cpu.database_cores",
        "results.cpu.machine_cores_busy",
    ],
    "fanout": [
        "results.latency.p50_ms",
        "results.latency.p99_ms",
        "results.latency.max_ms",
        "results.delivered_per_s",
        "results.check.ok",
        "results.slow_effect.p99_ratio",
        "results.cpu.client_cores",
        "results.cpu.server_cores",
        "results.cpu.machine_cores_busy",
    ],
    "query": [
        "results.requests_per_s",
        "results.latency.p50_ms",
        "results.latency.p99_ms",
        "results.cpu.client_cores",
        "results.cpu.server_cores",
        "results.cpu.machine_cores_busy",
    ],
}


def new_report(mode: str, server: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    machine = machine_info()
    return {
        "bench": "forum-bench",
        "version": REPORT_VERSION,
        "mode": mode,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "forum " + shlex.join(sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("forum")
        else shlex.join(sys.argv),
        "machine": machine,
        "server": server,
        "results": results,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_report(path: Path) -> dict[str, Any]:
    obj = orjson.loads(path.read_bytes())
    if not isinstance(obj, dict) or obj.get("bench") != "forum-bench":
        raise ValueError(f"{path} is not a forum bench report")
    return obj


def flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}.{i}")
    else:
        yield prefix, obj


def _get(report: dict[str, Any], path: str) -> Any:
    cur: Any = report
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summary_table(report: dict[str, Any]) -> Table:
    """The headline figures of one report."""
    mode = report["mode"]
    server = report.get("server", {})
    where = server.get("database") or server.get("url") or "?"
    t = Table(
        title=f"forum bench {mode} — {where}, load {report['machine'].get('loadavg')}",
        show_header=True,
    )
    t.add_column("figure")
    t.add_column("value", justify="right")
    for path in HEADLINES.get(mode, []):
        v = _get(report, path)
        if v is not None:
            t.add_row(path.removeprefix("results."), _fmt(v))
    res = report["results"]
    if mode == "ingest":
        for i, ph in enumerate(res.get("phases", [])):
            t.add_row(
                f"phase {i} ({ph['idle_subscribers']} idle) accepted/s", _fmt(ph["accepted_per_s"])
            )
        if res.get("errors"):
            t.add_row("errors", ", ".join(f"{k}: {v}" for k, v in res["errors"].items()))
        vs = res.get("versus") or {}
        if vs.get("error"):
            t.add_row(f"versus {vs.get('relay')}", f"not measured: {vs['error']['reason']}")
        elif vs.get("errors"):
            t.add_row("versus errors", ", ".join(f"{k}: {v}" for k, v in vs["errors"].items()))
    if mode == "scale":
        for row in res.get("sizes", []):
            n = f"{row['size']:,}"
            t.add_row(f"{n}: ingest accepted/s", _fmt(row["ingest"]["accepted_per_s"]))
            t.add_row(f"{n}: score update µs/event", _fmt(row["scores_update"]["us_per_event"]))
            listing: dict[str, Any] = next((v for k, v in row["pages"].items() if k.startswith("/api/v1/scores?limit")), {})
            t.add_row(f"{n}: score listing p99 ms", _fmt(listing.get("p99_ms")))
            t.add_row(f"{n}: restart to serving s", _fmt(row["restart"]["serving_s"]))
            t.add_row(f"{n}: restart to scores s", _fmt(row["restart"]["scores_ready_s"]))
    if mode == "fanout":
        chk = res.get("check", {})
        t.add_row("subscribers × events", f"{res.get('subscribers')} × {res.get('published')}")
        for k in ("unanswered_publishes", "missing", "duplicates", "out_of_order", "mismatched"):
            if k in chk:
                t.add_row(f"check.{k}", _fmt(chk[k]))
        if "slow" in res:
            t.add_row("slow subscriber closed", _fmt(res["slow"].get("closed_by_server")))
    if mode == "query":
        for path, r in res.get("paths", {}).items():
            t.add_row(
                f"  {path} p50/p99 ms",
                f"{_fmt(r['latency']['p50_ms'])} / {_fmt(r['latency']['p99_ms'])}",
            )
    cpu = res.get("cpu") or {}
    if cpu.get("limited_by"):
        t.add_row("limited by", cpu["limited_by"])
    return t


def compare_table(
    a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str, everything: bool = False
) -> Table:
    """Numeric figures of two reports side by side with B/A."""
    fa = {k: v for k, v in flatten(a.get("results", {}), "results")}
    fb = {k: v for k, v in flatten(b.get("results", {}), "results")}
    head = HEADLINES.get(a.get("mode", ""), []) + HEADLINES.get(b.get("mode", ""), [])
    keys = list(dict.fromkeys([k for k in head if k in fa or k in fb]))
    if everything:
        keys += [
            k
            for k in dict.fromkeys([*fa, *fb])
            if k not in keys and not k.startswith("results.params")
        ]
    t = Table(title=f"{a_name} (A) vs {b_name} (B)")
    t.add_column("figure")
    t.add_column("A", justify="right")
    t.add_column("B", justify="right")
    t.add_column("B/A", justify="right")
    for k in keys:
        va, vb = fa.get(k), fb.get(k)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (va, vb))
        # A figure one report lacks (e.g. database_cores of a SQLite run) is shown as "–".
        if not all(isinstance(v, int | float | bool | None) for v in (va, vb)) or (
            va is None and vb is None
        ):
            continue
        ratio = "–"
        if numeric and va:
            ratio = f"{vb / va:.2f}×"
        t.add_row(k.removeprefix("results."), _fmt(va), _fmt(vb), ratio)
    return t


def print_table(table: Table) -> None:
    Console(highlight=False, soft_wrap=False, width=max(100, Console().width)).print(table)
