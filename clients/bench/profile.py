"""Sampling the server with py-spy while a phase runs, and reading the samples.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``),
one line per distinct stack. :func:`summarize` turns them into the
functions that were on top of the stack most often (self time) and the ones
most often anywhere on it (inclusive time), as shares of all samples, per
thread kind (the event loop vs the signature-verifying threads).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any


class Profiler:
    """py-spy attached to one pid for one phase at a time."""

    def __init__(self, pid: int, base: Path, rate: int = 250) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        self.exe = exe
        self.pid = pid
        self.base = base
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        self.files: list[Path] = []

    def start(self, label: str) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "phase"
        self.path = self.base.with_name(f"{self.base.name}.{slug}.txt")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--threads",
                "--subprocesses",  # the forum's verify worker processes
                "--nonblocking",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # let it attach before the clock starts
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"py-spy could not attach to pid {self.pid}: {err.strip()}")

    def stop(self) -> dict[str, Any] | None:
        if self.proc is None or self.path is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        path, self.path = self.path, None
        if not path.exists():
            return None
        self.files.append(path)
        return {"file": str(path), **summarize(path.read_text())}


# Where a sample's time goes, by the first marker found anywhere on its stack (in this order).
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("signature check (libsodium, GIL released)", ("crypto_sign_open",)),
    ("event validation (strict JSON, pydantic)", ("verify_envelope", "check_chunk")),
    ("hub fan-out (matching, queueing)", ("Hub.deliver", "Hub.committed", "Hub._advance")),
    ("WebSocket send", ("_sender", "send_text", "Outbox.get")),
    (
        "receive and parse (WebSocket frames, HTTP requests)",
        ("_reader", "parse_message", "_publish", "data_received"),
    ),
    (
        "database (SQLAlchemy, drivers)",
        ("Store.", "sqlalchemy/", "aiosqlite", "asyncpg", "greenlet"),
    ),
    (
        "ingest pipeline (queues, futures, thread hand-off)",
        ("Ingest.", "VerifyPool.", "_verify_chunk", "futures/thread.py", "futures/process.py", "_chain_future", "call_soon_threadsafe"),
    ),
    (
        "HTTP handling and rendering",
        ("starlette/", "uvicorn/protocols/http", "jinja2", "feedgen", "feeds/"),
    ),
    ("scores engine", ("scores.py", "ledger.py", "scoring.py", "raters/")),
    ("event loop waiting (select)", ("EpollSelector.select",)),
]


def category(frames: list[str]) -> str:
    joined = ";".join(frames)
    for name, markers in CATEGORIES:
        if any(m in joined for m in markers):
            return name
    return "other"


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)`` with the package directory kept."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    parts = m.group("file").split("/")
    where = "/".join(parts[-2:]) if len(parts) > 1 else parts[-1]
    for marker in ("site-packages/", "python3.11/"):
        if marker in m.group("file"):
            where = m.group("file").split(marker, 1)[1]
    return f"{m.group('func')} ({where})"


def summarize(raw: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares (percent of samples) of the hottest functions, per thread kind."""
    total = 0
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        body = [f for f in frames if not f.startswith(("thread", "process"))]
        if not body:
            continue
        kind = (
            "verify workers"
            if any("_verify_chunk" in f or "check_chunk" in f for f in body)
            else (
                "event loop"
                if "MainThread" in thread
                or any("run_until_complete" in f or "run_forever" in f for f in body[:6])
                else "other threads"
            )
        )
        threads[kind] += n
        cats[category(body)] += n
        total += n
        self_c[_short(body[-1])] += n
        for f in dict.fromkeys(_short(f) for f in body):
            incl_c[f] += n

    def pct(c: Counter[str]) -> list[list[Any]]:
        return (
            [[name, round(100 * v / total, 1)] for name, v in c.most_common(top)] if total else []
        )

    return {
        "samples": total,
        "threads": {k: round(100 * v / total, 1) for k, v in threads.most_common()}
        if total
        else {},
        "categories": {k: round(100 * v / total, 1) for k, v in cats.most_common()}
        if total
        else {},
        "self_top": pct(self_c),
        "inclusive_top": pct(incl_c),
    }
