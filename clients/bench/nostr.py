"""``forum bench ingest --versus nostr-relay``: the same load on a Python Nostr relay, in the same run.

After the forum's phases (and after the forum the bench started has stopped,
so it takes no CPU from the relay), the same number of events of the same
size go to nostr-relay 1.14 (:mod:`clients.bench.nostr_relay`) over the same
number of connections with the same window in flight, through the same load
loop (:func:`clients.bench.ingest.publish_all`, with :class:`NostrPublisher`
reading Nostr's ``["OK", id, accepted, message]``). The events are kind-1
notes signed before the clock starts, in the relay's virtualenv
(:mod:`clients.bench.nostr_events`), their content sized so that an event's
JSON is as long as the forum's envelope; three of them are checked with the
project's own BIP-340 (:mod:`clients.bench.bip340`) first. The rate is
acknowledged events over first EVENT to last OK, as for the forum; the relay
acknowledges after its commit. ``ratio`` is the forum's rate over the relay's.
After the run the relay's database is opened and its stored events counted.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from clients.bench import bip340, nostr_events
from clients.bench.ingest import IngestParams, _Publisher, _split, drive, publish_all, tally
from clients.bench.nostr_relay import VERSION, Relay, VersusError, ensure_venv, installed
from clients.bench.signing import Presigned, presign
from clients.bench.stats import CpuMeter, cpu_cost
from clients.bench.target import Ui
from clients.bench.workers import WorkerContext, WorkerGroup
from clients.bench.wsclient import WsError, encode_frame

VERSUS = ("nostr-relay",)
"""The relays ``--versus`` knows."""
CHECKED_EVENTS = 3
"""Events of the relay's load verified with the project's own BIP-340 (~15 ms each in pure Python)."""


class NostrPublisher(_Publisher):
    """The forum bench's publisher, reading a Nostr relay's acknowledgements (NIP-01/NIP-20)."""

    def _ok_fields(self, m: bytes) -> tuple[str, bool, str]:
        frame = orjson.loads(m)
        return frame[1], bool(frame[2]), str(frame[3]) if len(frame) > 3 else ""

    def _unmatched(self, accepted: bool) -> float | None:
        if accepted or not self.sent_at:
            self.reasons["unexpected-ok"] += 1
            return None
        # nostr-relay answers an event it failed on with an empty id; it handles
        # one message per connection at a time, in order: the oldest in flight.
        return self.sent_at.pop(next(iter(self.sent_at)))

    def _count(self, accepted: bool, message: str) -> None:
        if accepted:
            self.accepted += 1
        elif message.startswith("duplicate"):
            self.duplicates += 1
        else:
            self.reasons[message.split(":", 1)[0] or "refused"] += 1


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def forum_event_bytes(p: IngestParams) -> int:
    """Mean length of the forum's envelope JSON for this run's kind and text size."""
    sample = presign(20, kind=p.kind, authors=p.authors, text_bytes=p.text_bytes, procs=1)
    return round(sum(len(e) for e in sample.envelopes) / len(sample.envelopes))


def sign_events(venv: Path, count: int, authors: int, content_bytes: int, procs: int, created_at: int) -> Presigned:
    """``count`` kind-1 events signed by coincurve in the relay's virtualenv (``procs`` processes)."""
    tag = os.urandom(4).hex()
    common = {
        "authors": authors,
        "secret": f"forum-bench-nostr-{tag}",
        "content_bytes": content_bytes,
        "created_at": created_at,
        "tag": tag,
    }
    chunk = -(-count // max(1, procs))
    jobs = []
    for first in range(0, count, chunk):
        args = {**common, "count": min(chunk, count - first), "first": first}
        jobs.append(
            subprocess.Popen(
                [str(venv / "bin" / "python"), nostr_events.__file__, orjson.dumps(args).decode()],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    pre = Presigned()
    for job in jobs:
        stdout, stderr = job.communicate(timeout=600)
        if job.returncode:
            raise VersusError("signing-failed", stderr.decode(errors="replace")[-2000:])
        for line in stdout.splitlines():
            ev = orjson.loads(line)
            pre.ids.append(ev["id"])
            pre.sigs.append(ev["sig"])
            pre.envelopes.append(line)
            pre.frames.append(encode_frame(b'["EVENT",' + line + b"]"))
    if len(set(pre.ids)) != count:
        raise VersusError("signing-failed", f"{len(set(pre.ids))} distinct events signed of {count}")
    return pre


def check_events(pre: Presigned) -> None:
    """A few events' ids recomputed and signatures verified with the project's own BIP-340."""
    for i in sorted({0, len(pre) // 2, len(pre) - 1})[:CHECKED_EVENTS]:
        ev = orjson.loads(pre.envelopes[i])
        want = nostr_events.event_id(ev["pubkey"], ev["created_at"], ev["kind"], ev["tags"], ev["content"])
        if want != ev["id"]:
            raise VersusError("event-check-failed", f"event {i}: id {ev['id']} is not {want}")
        if not bip340.verify(bytes.fromhex(ev["id"]), bytes.fromhex(ev["pubkey"]), bytes.fromhex(ev["sig"])):
            raise VersusError("event-check-failed", f"event {i}: the BIP-340 signature does not verify")


def _phase(url: str, relay_pid: int, pre: Presigned, lo: int, hi: int, p: IngestParams, label: str, ui: Ui) -> dict[str, Any]:
    """One measured phase against the relay: events lo..hi, p.connections x p.window in flight."""
    procs = max(1, min(p.procs, p.connections))
    parts = _split(pre, lo, hi, p.connections, procs)

    def make_main(part: list[tuple[list[bytes], list[str]]]) -> Any:
        async def main(ctx: WorkerContext) -> dict[str, Any]:
            return await publish_all(url, part, p.window, ctx, p.timeout, NostrPublisher)

        return main

    group = WorkerGroup([make_main(part) for part in parts])
    group.wait_ready()
    meter = CpuMeter(groups={"client": [os.getpid()], "server": [relay_pid]}, recursive={"server"})
    results, cpu = drive(group, meter, ui, f"{label}: publishing", hi - lo, p.timeout + 60)
    cpu["limited_by"] = str(cpu["limited_by"]).replace("the forum", "the relay")
    out: dict[str, Any] = tally(results, hi - lo)
    out["cpu"] = cpu
    out["cpu_us_per_event"] = cpu_cost(cpu, out["accepted_per_s"])
    return out


def _stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def forum_phase(forum: dict[str, Any]) -> dict[str, Any]:
    """The forum's measured phase without idle subscribers (the one the relay's is compared with)."""
    phases = [ph for ph in forum.get("phases", []) if not ph.get("idle_subscribers")]
    return phases[-1] if phases else {}


def compare(forum: dict[str, Any], relay: dict[str, Any]) -> dict[str, Any]:
    """The forum's rate over the relay's, and the relay's server CPU per event over the forum's.

    The CPU ratio counts the forum's database (PostgreSQL) with the forum; it
    moves less than the rates when other work shares the cores.
    """
    ph = forum_phase(forum)
    rate = float(ph.get("accepted_per_s", 0.0))
    fcost = ph.get("cpu_us_per_event", {})
    forum_us = (fcost.get("server") or 0.0) + (fcost.get("database") or 0.0)
    relay_us = relay["cpu_us_per_event"].get("server") or 0.0
    return {
        "forum_accepted_per_s": rate,
        "ratio": round(rate / relay["accepted_per_s"], 2) if relay["accepted_per_s"] else None,
        "forum_server_us_per_event": round(forum_us, 1) if fcost.get("server") is not None else None,
        "cpu_ratio": round(relay_us / forum_us, 2) if forum_us and relay_us else None,
    }


def run_versus(
    p: IngestParams, forum: dict[str, Any], ui: Ui, load_before_forum: list[float], workers: int = 1
) -> dict[str, Any]:
    """The relay's side of the run; ``forum`` is :func:`clients.bench.ingest.run_ingest`'s result."""
    out: dict[str, Any] = {
        "relay": f"nostr-relay {VERSION}",
        "relay_workers": workers,
        "database": "sqlite (journal_mode=wal, synchronous=normal)",
        "loadavg": {"before_forum": load_before_forum},
    }
    try:
        venv = ensure_venv(ui.note)
        out["installed"] = installed(venv)
        forum_bytes = forum_event_bytes(p)
        created = int(time.time())
        content = max(0, forum_bytes - nostr_events.empty_event_bytes(created))
        total = p.warmup + p.events
        t0 = time.monotonic()
        with ui.task(f"signing {total} Nostr events (coincurve, in the relay's virtualenv)", None):
            pre = sign_events(venv, total, p.authors, content, p.sign_procs or os.cpu_count() or 1, created)
        out["signing"] = {"events": total, "seconds": round(time.monotonic() - t0, 2)}
        check_events(pre)
        out["events_checked"] = CHECKED_EVENTS
        sizes = [len(e) for e in pre.envelopes]
        out["event_bytes"] = {"forum_envelope": forum_bytes, "nostr_event": round(sum(sizes) / len(sizes)), "nostr_content": content}
        with tempfile.TemporaryDirectory(prefix="forum-bench-nostr-") as tmp:
            relay = Relay(venv, Path(tmp), workers)
            out["loadavg"]["before_relay"] = _loadavg()
            with ui.task("starting nostr-relay", None):
                relay.start()
            try:
                out["config"] = relay.config_text().replace(tmp, "$TMP")
                ui.note(f"nostr-relay {VERSION} at {relay.url} (pid {relay.pid})")
                if p.warmup:
                    warm_p = dataclasses.replace(p, procs=1)
                    warm = _phase(relay.url, relay.pid, pre, 0, p.warmup, warm_p, "relay warm-up", ui)
                    out["warmup"] = {"accepted": warm["accepted"], "accepted_per_s": warm["accepted_per_s"]}
                res = _phase(relay.url, relay.pid, pre, p.warmup, total, p, "nostr-relay", ui)
            finally:
                relay.stop()
            out["loadavg"]["after_relay"] = _loadavg()
            out["stored_events"] = _stored(Path(tmp) / "nostr.sqlite3")
    except VersusError as e:
        out["error"] = e.as_error()
        return out
    except (OSError, WsError, TimeoutError, RuntimeError) as e:  # a connection or a load worker failed
        out["error"] = {"reason": "relay-load-failed", "detail": f"{type(e).__name__}: {e}"[:2000]}
        return out
    out["phase"] = res
    for k in ("accepted_per_s", "ok_latency", "errors", "cpu", "cpu_us_per_event"):
        out[k] = res[k]
    out.update(compare(forum, res))
    ui.note(
        f"nostr-relay: {res['accepted_per_s']:,.0f} accepted/s, OK p50 {res['ok_latency']['p50_ms']} ms, "
        f"p99 {res['ok_latency']['p99_ms']} ms; the forum {out['forum_accepted_per_s']:,.0f}/s = {out['ratio']}x, "
        f"CPU per event {out['cpu_ratio']}x"
    )
    return out
