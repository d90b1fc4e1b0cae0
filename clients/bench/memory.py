"""Memory of a forum and its processes, three ways (for ``forum bench abuse``).

PSS (proportional set size) divides each shared page among the processes that
map it, so the tree's summed PSS is the memory it really holds, a
copy-on-write fork (the state-file writer, forum/statefile.py) included once.
Summed RSS counts such a fork's shared pages twice while it lives.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psutil

MB = 1024 * 1024


def tree_memory(proc: psutil.Process) -> tuple[int, int, int]:
    """(summed RSS of the tree, summed PSS of the tree, RSS of ``proc`` itself); zeros once it is gone."""
    try:
        rss = pss = 0
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                full = p.memory_full_info()
                rss += full.rss
                pss += getattr(full, "pss", full.rss)
        return rss, pss, proc.memory_info().rss
    except psutil.Error:
        return 0, 0, 0


def growth(samples: list[tuple[int, int, int]], before: tuple[int, int, int], after: tuple[int, int, int]) -> dict[str, Any]:
    """Peak growth during the samples and what was kept after, in MB, each way."""
    peak = [max((s[i] for s in samples), default=before[i]) for i in range(3)]

    def mb(x: int) -> float:
        return round(x / MB, 1)

    return {
        "pss_growth_mb": mb(peak[1] - before[1]),
        "pss_kept_mb": mb(after[1] - before[1]),
        "main_rss_growth_mb": mb(peak[2] - before[2]),
        "main_rss_kept_mb": mb(after[2] - before[2]),
        "rss_before_mb": mb(before[0]),
        "rss_peak_mb": mb(peak[0]),
        "rss_growth_mb": mb(peak[0] - before[0]),
        "rss_after_mb": mb(after[0]),
        "rss_kept_mb": mb(after[0] - before[0]),
    }


def tree_size(proc: psutil.Process) -> int:
    """Processes in ``proc``'s tree (itself included); 0 once it is gone."""
    try:
        return 1 + len(proc.children(recursive=True))
    except psutil.Error:
        return 0
