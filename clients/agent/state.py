"""The owner's agent's private state on disk: it survives restarts and ``kill -9``.

One folder (mode 0700; files 0600), beside the profile (``owner.toml`` ->
``owner.state/``), never sent anywhere:

* ``feedback.json``: what the owner told the agent (``forum agent feedback``,
  the ``owner_feedback`` tool); the model is refitted from it on start.
* ``notices.json``: notices the agent raised for the owner (``forum agent notices``).
* ``outbox.json``: signed events about to be published. Written (fsynced)
  *before* an event is sent and cleared after the forum acknowledged it; on
  start, whatever is left is sent again. An event's id is the hash of its
  signed payload, so a re-sent event is a ``duplicate`` at the forum, never a
  second publication.
* ``actions.json``: when each guarded action was taken (the hourly budgets).
* ``jury.json``: the agent's sealed jury votes, per case and round: the vote,
  the reason and the **salt**, written (fsynced) *before* the commitment is
  sent, so a restart reveals exactly what was sealed; the salt leaves the
  machine only inside the reveal, never in a log line or a tool result.
* ``flags.json``: flags the agent drafted for the owner; nothing is published
  until the owner confirms one (``forum agent flag confirm ID``).

Every file is replaced atomically (write, fsync, rename), and every
read-modify-write holds an exclusive lock on ``lock``, so ``forum agent
feedback`` can run while ``forum agent run`` or ``forum mcp`` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from clients.agent.owner import Feedback, Notice

__all__ = ["AgentState"]


def _write(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _read(path: Path, default: Any) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return default


def notice_json(notice: Notice) -> dict[str, Any]:
    """A notice as plain JSON (weights and numbers rounded for reading)."""
    out: dict[str, Any] = {}
    for name in getattr(notice, "__dataclass_fields__", {}):
        value = getattr(notice, name)
        if isinstance(value, Mapping):
            value = {k: round(float(v), 3) for k, v in value.items()}
        elif isinstance(value, float):
            value = round(value, 3)
        out[name] = value
    return out


class AgentState:
    """The state folder of one owner's agent."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)

    def _path(self, name: str) -> Path:
        return self.folder / name

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        fd = os.open(self._path("lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ feedback

    def feedback(self) -> list[Feedback]:
        rows = _read(self._path("feedback.json"), [])
        return [
            Feedback(
                r["target"],
                r["score"],
                dict(r.get("criteria", {})),
                r.get("note", ""),
                r.get("at_ms", 0),
            )
            for r in rows
        ]

    def feedback_mtime(self) -> int:
        try:
            return self._path("feedback.json").stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def add_feedback(self, fb: Feedback) -> int:
        """Append one piece of feedback; returns how many there are now."""
        with self.lock():
            rows = _read(self._path("feedback.json"), [])
            rows.append(
                {
                    "target": fb.target,
                    "score": fb.score,
                    "criteria": dict(fb.criteria),
                    "note": fb.note,
                    "at_ms": fb.at_ms,
                }
            )
            _write(self._path("feedback.json"), rows)
            return len(rows)

    # ------------------------------------------------------------------ notices

    def notices(self) -> list[dict[str, Any]]:
        return list(_read(self._path("notices.json"), []))

    def add_notice(self, notice: Notice) -> None:
        with self.lock():
            rows = _read(self._path("notices.json"), [])
            rows.append({**notice_json(notice), "at_ms": time.time_ns() // 1_000_000})
            _write(self._path("notices.json"), rows[-200:])

    # ------------------------------------------------------------------ the outbox

    def outbox(self) -> list[dict[str, str]]:
        return list(_read(self._path("outbox.json"), []))

    def stage(self, envelopes: list[dict[str, str]]) -> None:
        """Record envelopes about to be sent (durable before the first byte goes out)."""
        with self.lock():
            rows = _read(self._path("outbox.json"), [])
            _write(self._path("outbox.json"), rows + envelopes)

    def sent(self, envelopes: list[dict[str, str]]) -> None:
        """Drop acknowledged envelopes from the outbox."""
        done = {e["sig"] for e in envelopes}
        with self.lock():
            rows = _read(self._path("outbox.json"), [])
            _write(self._path("outbox.json"), [e for e in rows if e["sig"] not in done])

    # ------------------------------------------------------------------ jury duty

    def jury(self) -> dict[str, dict[str, Any]]:
        """``"<case>/<round>"`` -> the sealed vote and what was published of it."""
        return dict(_read(self._path("jury.json"), {}))

    def jury_update(self, seat: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into one seat's record (durable before anything is sent)."""
        with self.lock():
            data = _read(self._path("jury.json"), {})
            data[seat] = {**data.get(seat, {}), **fields}
            _write(self._path("jury.json"), data)
            return dict(data[seat])

    # ------------------------------------------------------------------ flag drafts

    def flags(self) -> list[dict[str, Any]]:
        return list(_read(self._path("flags.json"), []))

    def add_flag(self, draft: dict[str, Any]) -> dict[str, Any]:
        """Keep a drafted flag for the owner (the same draft twice is kept once); returns it with its id."""
        ident = hashlib.sha256(orjson.dumps(draft, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
        with self.lock():
            rows = _read(self._path("flags.json"), [])
            for row in rows:
                if row["id"] == ident:
                    return dict(row)
            row = {"id": ident, "status": "draft", "at_ms": time.time_ns() // 1_000_000, "draft": draft}
            _write(self._path("flags.json"), [*rows, row][-200:])
            return row

    def flag_update(self, ident: str, **fields: Any) -> dict[str, Any] | None:
        with self.lock():
            rows = _read(self._path("flags.json"), [])
            for row in rows:
                if row["id"] == ident:
                    row.update(fields)
                    _write(self._path("flags.json"), rows)
                    return dict(row)
            return None

    # ------------------------------------------------------------------ budgets

    def take(self, action: str, per_hour: int, now: float | None = None) -> float | None:
        """Spend one unit of ``action``'s hourly budget: None if spent, else seconds until one frees."""
        now = time.time() if now is None else now
        with self.lock():
            data = _read(self._path("actions.json"), {})
            recent = [t for t in data.get(action, []) if t > now - 3600.0]
            if len(recent) >= per_hour:
                return (min(recent) + 3600.0 - now) if recent else 3600.0
            recent.append(now)
            data[action] = recent
            _write(self._path("actions.json"), data)
            return None

    def refund(self, action: str) -> None:
        """Give back the last unit taken (the action did not happen after all)."""
        with self.lock():
            data = _read(self._path("actions.json"), {})
            if data.get(action):
                data[action].pop()
                _write(self._path("actions.json"), data)
