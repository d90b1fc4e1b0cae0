"""A filled log kept on disk for ``forum bench scale --data-dir DIR``: filled once, measured many times.

Filling 10^6 events takes minutes to tens of minutes on this machine; a
measurement on a quiet machine must not pay for it each time. ``prepare``
writes ``DIR/forum/forum.db`` (SQLite) through the forum's own writer
(:func:`clients.bench.scale.write_direct`, no forum running) and
``DIR/fill.json``: the key secret (so the measured phase continues the same
rating pairs), the authors, the ratings written and the fill's rate with the
machine's load. A measurement copies the database into the bench's temporary
data directory (:class:`clients.bench.server.BenchServer` ``seed``): the
prepared directory is never written by a forum, so every run starts from the
same log.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

FILL_FILE = "fill.json"
DB_DIR = "forum"


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return list(os.getloadavg())


def prepared(data_dir: Path) -> dict[str, Any] | None:
    """The fill record of a prepared directory (None: not prepared)."""
    f = data_dir / FILL_FILE
    if not f.is_file() or not (data_dir / DB_DIR / "forum.db").is_file():
        return None
    rec: dict[str, Any] = orjson.loads(f.read_bytes())
    return rec


def prepare(data_dir: Path, ratings: int, authors: int, ui: Any) -> dict[str, Any]:
    """Write ``authors`` agent profiles and ``ratings`` ratings into ``data_dir``'s database."""
    from clients.bench.scale import fill_chunks, write_direct

    db_dir = data_dir / DB_DIR
    if db_dir.exists():
        shutil.rmtree(db_dir)  # an unfinished fill (no fill.json): start again
    db_dir.mkdir(parents=True)
    secret = f"forum-bench-scale-{time.time_ns()}"
    url = f"sqlite+aiosqlite:///{db_dir / 'forum.db'}"
    load0 = loadavg()
    t0, c0 = time.monotonic(), time.process_time()
    with ui.task(f"writing {ratings:,} ratings into {db_dir}", None):
        accepted = asyncio.run(write_direct(url, fill_chunks(authors, 0, ratings, secret, first_profiles=True), ui=ui))
    seconds = time.monotonic() - t0
    rec = {
        "secret": secret,
        "authors": authors,
        "ratings": ratings,
        "accepted": accepted,
        "seconds": round(seconds, 1),
        "events_per_s": round(accepted / seconds, 1) if seconds else None,
        "bench_cpu_s": round(time.process_time() - c0, 1),  # signing (the pool's children not counted) and writing
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
        "database_bytes": sum(p.stat().st_size for p in db_dir.iterdir() if p.is_file()),
    }
    (data_dir / FILL_FILE).write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
    return rec


def seed_copy(data_dir: Path, dest: Path) -> float:
    """Copy the prepared database (not a state file: there is none) into ``dest``; seconds taken."""
    t0 = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    for p in (data_dir / DB_DIR).iterdir():
        if p.is_file():
            shutil.copyfile(p, dest / p.name)
    return time.monotonic() - t0
