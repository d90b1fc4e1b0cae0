"""CPU time of the processes a benchmark measures (Linux ``/proc``).

Latency on a shared machine moves with everyone else's load; the CPU a request
costs the server does not (much), so benchmarks report both.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from forum.db import create_engine


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_cpu_s(pid: int | None, *, children: bool = False) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (with ``children``, plus its live
    child processes: a PostgreSQL server's backends), None where there is no ``/proc``."""
    if pid is None or (fields := _stat(pid)) is None:
        return None
    ticks = int(fields[11]) + int(fields[12])
    if children:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (f := _stat(int(entry.name))) is not None and f[1] == str(pid):
                ticks += int(f[11]) + int(f[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server process behind ``url`` when it runs on this machine."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            backend = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            # Read while connected: the backend process exits when its connection closes (read
            # after ``dispose`` it was gone, and the benchmarks printed "-" for PostgreSQL's CPU).
            fields = _stat(backend)
    finally:
        await engine.dispose()
    return int(fields[1]) if fields is not None else None
