"""``forum bench plot``: the growth curves of ``forum bench scale`` reports as SVG charts.

Inline SVG written here (no plotting library): one chart per figure, the log size on
a logarithmic x axis, each series a line with its points marked, a legend, and the
machine's load average of each point in its tooltip. Several reports can be given
(e.g. one per size, each measured from a prepared data directory); a size measured in
more than one keeps the last report's row. The output is deterministic for the same
reports, so committed charts change only when the figures do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

W, H = 640, 360  # the chart's size in px
LEFT, RIGHT, TOP, BOTTOM = 70, 180, 46, 50  # margins: y labels, legend, title, x labels
COLOURS = ("#1b6ca8", "#d1495b", "#2e8b57", "#8a5a9b", "#c77d00", "#444444")  # distinct in print and for common colour blindness


@dataclass
class Series:
    name: str
    points: list[tuple[float, float, str]]  # (log size, value, tooltip)


def rows_of(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every measured size's row of ``forum bench scale`` reports, by size (the last report wins)."""
    by_size: dict[int, dict[str, Any]] = {}
    for report in reports:
        if report.get("mode") != "scale":
            raise ValueError("not a forum bench scale report")
        for row in report["results"]["sizes"]:
            by_size[int(row["size"])] = row
    return [by_size[k] for k in sorted(by_size)]


def _load(row: dict[str, Any]) -> str:
    la = row.get("loadavg", {}).get("measure_start")
    return f"load {la[0]:.1f}" if la else "load not recorded"


def series(rows: list[dict[str, Any]], name: str, value: Callable[[dict[str, Any]], float | None]) -> Series:
    pts = []
    for row in rows:
        v = value(row)
        if v is not None:
            pts.append((float(row["size"]), float(v), f"{name}: {v:g} at {row['size']:,} events ({_load(row)})"))
    return Series(name, pts)


def _ticks(hi: float) -> list[float]:
    """Round y ticks from 0 to at least ``hi``."""
    if hi <= 0:
        return [0.0, 1.0]
    step = 10 ** math.floor(math.log10(hi / 4))
    for m in (1, 2, 5, 10):
        if hi / (step * m) <= 5:
            step *= m
            break
    return [step * i for i in range(math.ceil(hi / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == 0 else f"{v:g}"


def chart(title: str, ylabel: str, lines: list[Series], note: str = "") -> str:
    """An SVG line chart of ``lines`` against the log size (log x axis, y from 0)."""
    pts = [p for s in lines for p in s.points]
    xs = [p[0] for p in pts] or [1e5, 1e6]
    lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    hi = max(hi, lo + 1)
    ticks = _ticks(max((p[1] for p in pts), default=1.0))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + pw * (math.log10(v) - lo) / (hi - lo)

    def y(v: float) -> float:
        return TOP + ph * (1 - v / ticks[-1])

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LEFT}" y="34" font-size="10" fill="#555">{escape(note)}</text>',
        f'<text x="16" y="{TOP + ph / 2:.1f}" transform="rotate(-90 16 {TOP + ph / 2:.1f})" text-anchor="middle">{escape(ylabel)}</text>',
        f'<text x="{LEFT + pw / 2:.1f}" y="{H - 10}" text-anchor="middle">events in the log</text>',
    ]
    for t in ticks:
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for e in range(lo, hi + 1):
        out.append(f'<line x1="{x(10**e):.1f}" x2="{x(10**e):.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{x(10**e):.1f}" y="{TOP + ph + 20}" text-anchor="middle">10<tspan dy="-6" font-size="9">{e}</tspan></text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    for i, s in enumerate(lines):
        c = COLOURS[i % len(COLOURS)]
        if len(s.points) > 1:
            path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py, _ in s.points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for px, py, tip in s.points:
            out.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="4" fill="{c}"><title>{escape(tip)}</title></circle>')
        ly = TOP + 10 + 18 * i
        out.append(f'<line x1="{W - RIGHT + 12}" x2="{W - RIGHT + 32}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{W - RIGHT + 38}" y="{ly + 4}">{escape(s.name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _p99(path: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda row: row["pages"].get(path, {}).get("p99_ms")


PAGES = {  # clients/bench/scale.py times these paths (the target view's did differs per run)
    "listing (top 50)": "/api/v1/scores?limit=50",
    "listing (offset 500)": "/api/v1/scores?sort=mean&limit=50&offset=500",
    "events API (100)": "/api/v1/events?limit=100",
    "home page": "/",
}


def _target_view(row: dict[str, Any]) -> float | None:
    return next((v["p99_ms"] for k, v in row["pages"].items() if k.startswith("/api/v1/scores/did:")), None)


def charts(rows: list[dict[str, Any]]) -> dict[str, str]:
    """File name -> SVG of every growth chart."""
    r = lambda row: row["restart"]  # noqa: E731
    loads = "load average at each size: " + ", ".join(f"{row['size']:,}: {_load(row).removeprefix('load ')}" for row in rows)
    return {
        "growth-ingest.svg": chart("Ingest rate (ratings published over WebSockets)", "accepted events/s", [
            series(rows, "accepted/s", lambda row: row["ingest"]["accepted_per_s"]),
        ], loads),
        "growth-ingest-cpu.svg": chart("Forum CPU per ingested rating", "CPU µs per event", [
            series(rows, "forum + workers", lambda row: row["ingest"]["cpu_us_per_event"].get("server")),
            series(rows, "forum's own process", lambda row: row["ingest"]["cpu_us_per_event"].get("server_main")),
        ], loads),
        "growth-score-update.svg": chart("Score update cost (per delivered batch, per rating)", "µs per rating", [
            series(rows, "batch updates", lambda row: row["scores_update"]["us_per_event"]),
        ], loads),
        "growth-restart.svg": chart("Restart after kill -9", "seconds after the start", [
            series(rows, "listening", lambda row: r(row)["listening_s"]),
            series(rows, "scores answer", lambda row: r(row)["scores_ready_s"]),
            series(rows, "scores reflect the log", lambda row: r(row)["scores_current_s"]),
        ], loads),
        "growth-pages.svg": chart("Page p99 (sequential GETs, one connection)", "p99 ms", [
            *(series(rows, name, _p99(path)) for name, path in PAGES.items()),
            series(rows, "a target's scores", _target_view),
        ], loads),
    }  # fmt: skip


def write_charts(reports: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, svg in charts(rows_of(reports)).items():
        (out_dir / name).write_text(svg)
        written.append(out_dir / name)
    return written
