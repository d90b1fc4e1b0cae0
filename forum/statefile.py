"""Persisted engine state: what an engine holds, with the log prefix it covers.

The scores and values engines derive everything from the log; replaying the
whole log at each start costs time linear in its size. Each engine therefore
writes what it holds to ``DATA_DIR/<engine>-state.bin`` now and then (at most
every ``STATE_SAVE_INTERVAL_S``, and every 10 x the last write's duration),
and at start loads it and replays only the log after it.

File layout::

    MAGIC
    one JSON line: {"format", "code", "engine", "head", "head_id", "sections": [[bytes, sha256], ...]}
    section 0 (pickle)  what the engine serves (documents, running sums): small, loaded before serving
    section 1 (pickle)  the rest (the ledger): large, loaded in the background

The file is ignored (one log line, then a full replay) when its magic, format,
``code`` (a hash of the format number, the Python version, the source of every
module whose rules shape the state, and the settings that change the rules),
engine or a section's checksum differ, or when the log's event at ``head`` is
not ``head_id`` (another database, or a log that was replaced). Never trusted
over the log: each engine replays the whole log once in the background after a
restore and switches to the replayed state on a mismatch; ``forum verify``
recomputes every document from the export and reads no state file.

The sections are pickles: the file lives in the forum's own data directory,
beside the SQLite database, and is trusted as much as that directory (whoever
can write there can replace the log too). Writes are atomic (a temporary file,
fsync, rename), so a kill at any moment leaves the previous file or the new one.

Serializing is done in a forked child (:func:`fork_dump`, as Redis' BGSAVE
does): pickling a large state holds the GIL for the whole call (0.6 s at
3 x 10^4 ratings, seconds at 10^5), which in a thread of the server would stall
its event loop. The child pickles a copy-on-write snapshot of the engine's
objects straight into the temporary file, after room left for the header,
hashing as it writes, and hands back only each section's length and checksum;
the server's threads keep running meanwhile, and the engine is consistent at
the instant of the fork. The server then writes the header into that room
(:meth:`StateFile.finish`: it knows the id of the event at ``head``, the child
does not) and renames the file. Neither process holds the pickled bytes: they
go to the file 64 KB at a time (before, the child built them and the server
collected them through a pipe, 2 and 3 copies of the file's size, ~60 MB at
2 x 10^4 ratings, measured by ``forum bench abuse``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

log = structlog.get_logger("forum.statefile")

MAGIC = b"MYCELIUM-ENGINE-STATE\n"
FORMAT = 1
HEADER_ROOM = 4096
"""Bytes left for the header line (padded with spaces) in a file whose sections were written
first (:func:`fork_dump`); a header is ~400 bytes. Readers read the line either way."""
CODE_PACKAGES = ("raters", "forum/scores", "forum/values", "forum/protocol")
"""Source whose change invalidates every state file (the rules that turn the log into state)."""
CODE_FILES = ("forum/statefile.py",)


def code_key(*extra: object) -> str:
    """A hash of the format, the Python version, the rule-bearing source and ``extra`` (settings)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(f"{FORMAT}|{sys.version}|{extra!r}".encode())
    files = [root / f for f in CODE_FILES]
    for pkg in CODE_PACKAGES:
        files += (root / pkg).rglob("*.py")
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Header:
    engine: str
    head: int
    head_id: str
    sections: list[tuple[int, str]]  # (length, sha256 hex)
    offset: int  # where section 0 starts


class StateFile:
    """One engine's state file: atomic writes, checked reads."""

    def __init__(self, path: Path, engine: str, code: str) -> None:
        self.path = path
        self.engine = engine
        self.code = code

    def write(self, head: int, head_id: str, sections: list[bytes]) -> int:
        """Replace the file atomically; returns its size in bytes."""
        header = self._header_line(head, head_id, [(len(s), hashlib.sha256(s).hexdigest()) for s in sections])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.temporary()
        with open(tmp, "wb") as f:
            f.write(MAGIC + header + b"\n")
            for s in sections:
                f.write(s)
            f.flush()
            os.fsync(f.fileno())
        self._replace(tmp)
        return len(MAGIC) + len(header) + 1 + sum(len(s) for s in sections)

    def temporary(self) -> Path:
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")

    def write_sections(self, tmp: Path, sections: list[Any]) -> list[tuple[int, str]]:
        """Pickle each of ``sections`` into ``tmp`` after ``HEADER_ROOM``, as it goes (never
        whole in memory); returns each section's (length, sha256 hex) for :meth:`finish`."""
        out = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.seek(len(MAGIC) + HEADER_ROOM)
            for obj in sections:
                w = _Hashing(f)
                pickle.Pickler(w, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
                out.append((w.size, w.sha.hexdigest()))
        return out

    def finish(self, tmp: Path, head: int, head_id: str, sections: list[tuple[int, str]]) -> int:
        """Write the header into the room :meth:`write_sections` left in ``tmp``, then make it
        the file atomically (fsync, rename); returns its size in bytes."""
        header = self._header_line(head, head_id, sections)
        if len(header) >= HEADER_ROOM:
            raise ValueError(f"a state file header of {len(header)} bytes does not fit its room")
        with open(tmp, "r+b") as f:
            f.write(MAGIC + header + b" " * (HEADER_ROOM - 1 - len(header)) + b"\n")
            f.flush()
            os.fsync(f.fileno())
            size = f.seek(0, os.SEEK_END)
        self._replace(tmp)
        return size

    def _header_line(self, head: int, head_id: str, sections: list[tuple[int, str]]) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "code": self.code,
                "engine": self.engine,
                "head": head,
                "head_id": head_id,
                "sections": [[n, d] for n, d in sections],
            }
        )

    def _replace(self, tmp: Path) -> None:
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):  # a directory that cannot be fsynced (some filesystems)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def header(self) -> Header | None:
        """The file's header when it is this engine's, in this format and from this code
        (None, with one log line saying why, otherwise; None without a line when there is no file)."""
        got = self._header()
        if isinstance(got, str):
            self.ignored(got)
            return None
        return got

    def _header(self) -> Header | str | None:
        try:
            with open(self.path, "rb") as f:
                if f.read(len(MAGIC)) != MAGIC:
                    return "not a state file"
                line = f.readline(1 << 20)
                offset = f.tell()
        except FileNotFoundError:
            return None
        except OSError as e:
            return f"unreadable: {e}"
        try:
            h = orjson.loads(line)
            if h.get("format") != FORMAT:
                return f"format {h.get('format')!r}, this forum reads {FORMAT}"
            if h.get("engine") != self.engine:
                return f"written by engine {h.get('engine')!r}"
            if h.get("code") != self.code:
                return "written by other code or settings (rules may differ)"
            return Header(self.engine, int(h["head"]), str(h["head_id"]), [(int(n), str(d)) for n, d in h["sections"]], offset)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return "corrupt header"

    def section(self, header: Header, i: int) -> Any:
        """Section ``i`` unpickled, after its checksum matched (ValueError otherwise)."""
        start = header.offset + sum(n for n, _ in header.sections[:i])
        length, digest = header.sections[i]
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(length)
        if len(data) != length or hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"section {i} does not match its checksum")
        # our own file, in our own data directory (module docstring); read through _Frames so
        # that loading a large section in a thread does not hold the GIL from the event loop
        return pickle.Unpickler(_Frames(data)).load()

    def ignored(self, why: str) -> None:
        """One log line: the file is not used, the log is replayed instead."""
        log.warning("state file ignored, replaying the log", engine=self.engine, path=str(self.path), reason=why)
        return None


class _Frames:
    """The bytes of a pickle, handed to the unpickler one read at a time by Python code.

    Unpickling from ``bytes`` is one C call that holds the GIL until the whole object is
    built: 1-2.5 s of a 10^5-rating ledger section loaded in a thread after a restart,
    during which the event loop answered nothing (the first /healthz after listening took
    1.7-2.6 s, load 7; docs/performance.md "Restart to serving"). The pickle protocol
    frames its stream (64 KiB a frame), and the unpickler calls ``read`` of a file object
    for each frame: this ``read`` runs Python bytecode, where a waiting thread gets the GIL
    (sys.getswitchinterval(), 5 ms), so the event loop is never locked out for a whole
    section."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        self._pos = len(self._data) if n < 0 else min(len(self._data), start + n)
        return self._data[start : self._pos]

    def readinto(self, buf: Any) -> int:
        chunk = self.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)

    def readline(self) -> bytes:
        end = self._data.find(b"\n", self._pos)
        return self.read(-1 if end < 0 else end + 1 - self._pos)


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


class _Hashing:
    """A file that hashes and counts what is written through it."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, b: Any) -> int:
        # The pickler hands large buffers over as they are (a NumPy array's data comes as a
        # pickle.PickleBuffer, which has no len()): count bytes, not items.
        n = memoryview(b).nbytes
        self.sha.update(b)
        self.size += n
        self.f.write(b)
        return n


@dataclass
class Forked:
    """A child process writing a snapshot's sections into ``tmp``; :meth:`collect` returns
    their (length, sha256 hex) once it is done."""

    pid: int
    tmp: Path
    fd: int | None = None
    sections: list[tuple[int, str]] | None = None

    def collect(self) -> list[tuple[int, str]]:
        """Wait for the child (blocking, without the GIL), reap it and return its sections."""
        if self.sections is not None:
            return self.sections
        assert self.fd is not None
        with open(self.fd, "rb", closefd=True) as pipe:
            self.fd = None
            data = pipe.read()
        status = self._reap()
        sections = None
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, ValueError):
            got = orjson.loads(data) if status == 0 else None
            sections = [(int(n), str(d)) for n, d in got] if isinstance(got, list) and got else None
        if sections is None:
            self.discard()
            raise RuntimeError(f"the state dump in child process {self.pid} failed (wait status {status})")
        return sections

    def _reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        _thaw()
        return status

    def discard(self) -> None:
        """Drop the temporary file (reaping the child first when it was never collected)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            with contextlib.suppress(ChildProcessError):
                self._reap()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


_frozen = 0  # forked writers alive that froze the collector (both engines may fork at once)
_frozen_lock = threading.Lock()


def _freeze() -> None:
    """Before a fork: every object alive moves to the collector's permanent generation until
    the child is done (:func:`_thaw`), so that neither process's collections traverse them.
    A full collection writes to every tracked object's header: in the server while a child
    lives, that copies every page of the heap (a gen-2 collection of a state of 2 x 10^4
    ratings: 129 ms without a child, 303 ms with one, 0 frozen); in the child it would
    copy pages it only reads."""
    global _frozen
    with _frozen_lock:
        _frozen += 1
        gc.freeze()


def _thaw() -> None:
    global _frozen
    with _frozen_lock:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()  # back to the oldest generation, collected as before


def fork_dump(sf: StateFile, dump: Callable[[], list[Any]]) -> Forked:
    """Pickle the sections ``dump`` returns into ``sf``'s temporary file in a forked child,
    and return at once (:meth:`Forked.collect`, then :meth:`StateFile.finish`).

    Call it where the engine's state is consistent (under its lock or in its own
    thread): the child sees the objects as they are at the fork. Only the fork
    itself (copying page tables: milliseconds) happens here. Where ``os.fork`` is
    missing, the sections are written here.
    """
    tmp = sf.temporary()
    if not hasattr(os, "fork"):
        return Forked(pid=0, tmp=tmp, sections=sf.write_sections(tmp, dump()))
    r, w = os.pipe()
    _freeze()
    try:
        pid = os.fork()
    except BaseException:
        _thaw()
        raise
    if pid == 0:  # the child: pickle, write, leave without running any of the server's cleanup
        code = 1
        try:
            os.close(r)
            signal.set_wakeup_fd(-1)  # a signal here must not wake the server's event loop
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            sections = sf.write_sections(tmp, dump())
            with open(w, "wb", closefd=True) as pipe:
                pipe.write(orjson.dumps(sections))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return Forked(pid=pid, tmp=tmp, fd=r)


async def restore(sf: StateFile, head: int, id_at: Callable[[int], Awaitable[str | None]]) -> tuple[Header, Any] | None:
    """The header and serving section (0) of ``sf`` when it is valid for this log, whose
    last seq is ``head``; None (after one log line when the file is refused) to replay."""
    try:
        header = await asyncio.to_thread(sf.header)
        if header is None or header.head == 0:  # nothing saved: the whole log is a replay
            return None
        if header.head > head or await id_at(header.head) != header.head_id:
            sf.ignored(f"the log has no event {header.head_id} at seq {header.head}: another or a replaced log")
            return None
        return header, await asyncio.to_thread(sf.section, header, 0)
    except Exception as e:  # a corrupt file: replay instead
        sf.ignored(f"unreadable: {e!r}")
        return None


async def save_loop(
    sf: StateFile,
    engine: str,
    *,
    head: Callable[[], int],
    fork: Callable[[], Awaitable[tuple[int, Forked]]],
    id_at: Callable[[int], Awaitable[str | None]],
    metrics: Any,
    interval: float,
    saved: int,
) -> None:
    """Write ``sf`` now (when the engine's ``head()`` moved past ``saved``), then every
    max(interval, 10 x the last write): a bounded share of a core at any log size.
    ``fork()`` forks the dump where the engine's state is consistent: (its seq, the child)."""
    delay = 0.0
    while True:
        await asyncio.sleep(delay)
        delay = interval
        if head() in (saved, 0):
            continue
        t0 = time.perf_counter()
        forked = None
        try:
            at, forked = await fork()
            head_id = (await id_at(at) or "") if at else ""
            sections = await asyncio.to_thread(forked.collect)  # the child pickles its snapshot
            size = await asyncio.to_thread(sf.finish, forked.tmp, at, head_id, sections)
        except Exception:
            log.exception("state file not written", engine=engine)
            if forked is not None:
                await asyncio.to_thread(forked.discard)
            continue
        took = time.perf_counter() - t0
        saved = at
        metrics.state_saved_seq.labels(engine).set(at)
        metrics.state_save_seconds.labels(engine).set(took)
        log.debug("state file written", engine=engine, as_of_seq=at, bytes=size, seconds=round(took, 3))
        delay = max(interval, 10 * took)
