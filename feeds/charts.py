"""Inline SVG charts, drawn on the server.

Only numbers go into these SVGs: labels written by agents (criterion names,
metric names...) stay in the surrounding HTML, escaped by Jinja. Colours and
fonts come from CSS classes in /static/style.css; geometry uses SVG
presentation attributes, which a ``style-src 'self'`` policy allows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from markupsafe import Markup, escape


def _n(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _clamp(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, x))


def score_bar(x: float | None, *, width: int = 160, height: int = 12, label: str = "score") -> Markup:
    """A diverging bar for a value in [-1, 1]: right of the centre line if positive."""
    mid = width / 2
    parts = [
        f'<svg class="chart score-bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}: {"none" if x is None else f"{x:+.2f}"}">',
        f'<rect class="c-track" x="0" y="0" width="{width}" height="{height}" rx="3"/>',
    ]
    if x is not None and math.isfinite(x):
        v = _clamp(x)
        w = abs(v) * mid
        left = mid if v >= 0 else mid - w
        cls = "c-pos" if v >= 0.25 else "c-neg" if v <= -0.25 else "c-mid"
        parts.append(f'<rect class="{cls}" x="{_n(left)}" y="1" width="{_n(max(w, 1.0))}" height="{height - 2}" rx="2"/>')
    parts.append(f'<line class="c-axis" x1="{_n(mid)}" y1="0" x2="{_n(mid)}" y2="{height}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(counts: Sequence[int], *, width: int = 320, height: int = 120) -> Markup:
    """Columns for counts over equal bins spanning [-1, 1], with the axis labelled."""
    n = len(counts)
    if n == 0:
        return Markup("")
    top, bottom = 14, 18
    plot_h = height - top - bottom
    peak = max(max(counts), 1)
    gap = 2
    bw = width / n
    total = sum(counts)
    parts = [
        f'<svg class="chart histogram" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="Histogram of {total} ratings from -1 to +1">'
    ]
    for i, c in enumerate(counts):
        h = plot_h * c / peak
        centre = -1 + (i + 0.5) * 2 / n
        cls = "c-pos" if centre >= 0.25 else "c-neg" if centre <= -0.25 else "c-mid"
        x = i * bw + gap / 2
        parts.append(
            f'<rect class="{cls}" x="{_n(x)}" y="{_n(top + plot_h - h)}" width="{_n(bw - gap)}" '
            f'height="{_n(max(h, 0.0))}" rx="2"><title>{c} between {-1 + i * 2 / n:+.1f} and {-1 + (i + 1) * 2 / n:+.1f}</title></rect>'
        )
        if c:
            parts.append(
                f'<text class="c-label" x="{_n(x + (bw - gap) / 2)}" y="{_n(top + plot_h - h - 3)}" '
                f'text-anchor="middle" font-size="10">{c}</text>'
            )
    base = top + plot_h
    parts.append(f'<line class="c-axis" x1="0" y1="{base}" x2="{width}" y2="{base}"/>')
    for value, anchor, x in (("−1", "start", 0), ("0", "middle", width / 2), ("+1", "end", width)):
        parts.append(
            f'<text class="c-label" x="{_n(x)}" y="{height - 4}" text-anchor="{anchor}" font-size="11">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def metric_bars(baseline: float, observed: float | None, higher_is_better: bool, *, width: int = 180) -> Markup:
    """Two bars on one scale: the baseline (grey) and what was observed (green if better)."""
    row, gap = 10, 4
    height = row * 2 + gap
    values = [abs(baseline)] + ([abs(observed)] if observed is not None else [])
    peak = max(max(values), 1e-12)
    parts = [
        f'<svg class="chart metric-bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="baseline {baseline:g}, observed {"none" if observed is None else f"{observed:g}"}">'
    ]
    bw = width * abs(baseline) / peak
    parts.append(f'<rect class="c-base" x="0" y="0" width="{_n(max(bw, 1.0))}" height="{row}" rx="2"/>')
    if observed is not None:
        better = observed > baseline if higher_is_better else observed < baseline
        same = observed == baseline
        cls = "c-mid" if same else "c-pos" if better else "c-neg"
        ow = width * abs(observed) / peak
        parts.append(f'<rect class="{cls}" x="0" y="{row + gap}" width="{_n(max(ow, 1.0))}" height="{row}" rx="2"/>')
    else:
        parts.append(f'<rect class="c-track" x="0" y="{row + gap}" width="{width}" height="{row}" rx="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(part: int, total: int, *, width: int = 120, height: int = 10, cls: str = "c-pos") -> Markup:
    """A plain proportion bar."""
    frac = part / total if total else 0.0
    return Markup(
        f'<svg class="chart share-bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{part} of {total}">'
        f'<rect class="c-track" x="0" y="0" width="{width}" height="{height}" rx="3"/>'
        f'<rect class="{cls}" x="0" y="0" width="{_n(width * frac)}" height="{height}" rx="3"/></svg>'
    )


def history(points: Sequence[tuple[int, int, float | None]], *, width: int = 320, height: int = 90) -> Markup:
    """The mean rating over log time (a line in [-1, 1], zero marked), for a target's score history.

    ``points`` are (seq, count, mean) from the engine's history, oldest first. Steps:
    the mean holds until the next change.
    """
    pts = [(float(s), float(m)) for s, _c, m in points if m is not None and math.isfinite(m)]
    if len(pts) < 2:
        return Markup("")
    top, bottom = 6, 6
    plot_h = height - top - bottom
    x0, x1 = pts[0][0], pts[-1][0]
    span = (x1 - x0) or 1.0

    def x(seq: float) -> float:
        return width * (seq - x0) / span

    def y(mean: float) -> float:
        return top + plot_h * (1 - (_clamp(mean) + 1) / 2)

    path = [f"M{_n(x(pts[0][0]))} {_n(y(pts[0][1]))}"]
    for (_s0, m0), (s1, m1) in itertools.pairwise(pts):
        path.append(f"H{_n(x(s1))}")
        if m1 != m0:
            path.append(f"V{_n(y(m1))}")
    last = pts[-1][1]
    cls = "c-pos" if last >= 0.25 else "c-neg" if last <= -0.25 else "c-mid"
    return Markup(
        f'<svg class="chart history" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="Mean rating over time, from {_n(pts[0][1])} to {_n(last)}">'
        f'<line class="c-axis" x1="0" y1="{_n(y(0.0))}" x2="{width}" y2="{_n(y(0.0))}"/>'
        f'<path class="c-line {cls}" d="{" ".join(path)}" fill="none" stroke-width="2"/>'
        f'<circle class="{cls}" cx="{_n(x(pts[-1][0]))}" cy="{_n(y(last))}" r="3"/>'
        "</svg>"
    )
