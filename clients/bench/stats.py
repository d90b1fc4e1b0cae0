"""Latency histograms, CPU accounting and facts about the machine, shared by every bench mode."""

from __future__ import annotations

import asyncio
import math
import os
import platform
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil

from clients.bench.http import get

# ---------------------------------------------------------------------------- latency


class LatencyHist:
    """Latencies in log-spaced bins 0.5% wide (1 µs .. 1000 s): mergeable across processes.

    Percentiles are exact to the bin's width; ``max``, ``min``, ``count`` and
    ``mean`` are exact.
    """

    _BASE = math.log(1.005)
    _FLOOR = 1e-6

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.min = math.inf

    def add(self, seconds: float) -> None:
        x = seconds if seconds > self._FLOOR else self._FLOOR
        b = int(math.log(x / self._FLOOR) / self._BASE)
        self.bins[b] = self.bins.get(b, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        if seconds < self.min:
            self.min = seconds

    def merge(self, other: LatencyHist) -> LatencyHist:
        for b, n in other.bins.items():
            self.bins[b] = self.bins.get(b, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)
        return self

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (0..100), in seconds: the upper edge of its bin (capped at max)."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return min(self.max, self._FLOOR * math.exp((b + 1) * self._BASE))
        return self.max

    def summary_ms(self) -> dict[str, float | int | None]:
        """count, mean, p50, p90, p99, p99.9, max in milliseconds (None when empty)."""

        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000, 3)

        return {
            "count": self.count,
            "mean_ms": ms(self.total / self.count) if self.count else None,
            "p50_ms": ms(self.percentile(50)),
            "p90_ms": ms(self.percentile(90)),
            "p99_ms": ms(self.percentile(99)),
            "p999_ms": ms(self.percentile(99.9)),
            "max_ms": ms(self.max) if self.count else None,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "count": self.count,
            "total": self.total,
            "max": self.max,
            "min": self.min,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


# ---------------------------------------------------------------------------- CPU


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


@dataclass
class CpuMeter:
    """CPU seconds used by named groups of processes over a window, and the whole machine's.

    ``groups`` maps a name (client, server, database) to pids; a group's
    processes are looked up again at the end, so children born meanwhile
    (PostgreSQL backends) count from their birth.
    """

    groups: dict[str, list[int]] = field(default_factory=dict)
    recursive: set[str] = field(default_factory=set)
    detail: set[str] = field(default_factory=set)  # groups that are part of another (not added to the total)
    _start: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: Any = None
    _t0: float = 0.0

    def _procs(self, name: str) -> dict[int, psutil.Process]:
        out: dict[int, psutil.Process] = {}
        for pid in self.groups.get(name, []):
            try:
                p = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            out[pid] = p
            if name in self.recursive:
                for c in p.children(recursive=True):
                    out[c.pid] = c
        return out

    def _sample(self, name: str) -> dict[int, float]:
        out = {}
        for pid, p in self._procs(name).items():
            try:
                out[pid] = _cpu_seconds(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine = psutil.cpu_times()
        self._start = {name: self._sample(name) for name in self.groups}

    def stop(self, extra_client_seconds: float = 0.0) -> dict[str, Any]:
        """Cores used per group (CPU seconds / wall seconds) since :meth:`start`."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        out: dict[str, Any] = {"wall_s": round(wall, 3)}
        used_total = 0.0
        for name in self.groups:
            end = self._sample(name)
            start = self._start.get(name, {})
            used = sum(v - start.get(pid, 0.0) for pid, v in end.items())
            if name == "client":
                used += extra_client_seconds
            if name not in self.detail:
                used_total += used
            out[f"{name}_cores"] = round(used / wall, 3)
        m1 = psutil.cpu_times()
        m0 = self._machine
        busy = (sum(m1) - m1.idle - getattr(m1, "iowait", 0)) - (
            sum(m0) - m0.idle - getattr(m0, "iowait", 0)
        )
        cpus = psutil.cpu_count() or 1
        out["machine_cores_busy"] = round(busy / wall, 3)
        out["machine_cores"] = cpus
        out["other_cores"] = round(max(0.0, busy - used_total) / wall, 3)
        out["limited_by"] = limited_by(out)
        return out


def limited_by(cpu: dict[str, Any]) -> str:
    """A plain reading of the CPU figures: who used the cores, and were they all busy."""
    cores = cpu.get("machine_cores", 1)
    busy = cpu.get("machine_cores_busy", 0.0)
    parts = {
        k[:-6]: v for k, v in cpu.items() if k.endswith("_cores") and k not in ("machine_cores",)
    }
    top = max(parts.items(), key=lambda kv: kv[1]) if parts else ("?", 0.0)
    saturated = busy >= 0.9 * cores
    if saturated:
        return f"CPU: all {cores} cores busy; the largest user is {top[0]} ({top[1]:.2f} cores)"
    if cpu.get("client_cores", 0.0) >= 0.9:
        return f"client: the load generator used {cpu['client_cores']:.2f} of its cores"
    if cpu.get("server_main_cores", 0.0) >= 0.9:
        return f"server: the forum's main process used {cpu['server_main_cores']:.2f} cores (one event loop saturates at ~1)"
    if cpu.get("server_cores", 0.0) >= 0.9:
        return f"server: the forum used {cpu['server_cores']:.2f} cores (one event loop saturates at ~1)"
    return f"not CPU: {busy:.2f} of {cores} cores busy (latency, locks or I/O)"


def cpu_cost(cpu: dict[str, Any], per_s: float) -> dict[str, float | None]:
    """CPU microseconds each process group spent per unit of work (event, frame, request).

    Less sensitive than rates to other load on the machine: a starved server
    is slow, but spends about the same CPU per event.
    """
    out: dict[str, float | None] = {}
    for key, value in cpu.items():
        if key.endswith("_cores") and key not in (
            "machine_cores",
            "machine_cores_busy",
            "other_cores",
        ):
            out[key.removesuffix("_cores")] = round(value * 1e6 / per_s, 1) if per_s else None
    return out


class ProcessClock:
    """This process's CPU seconds since creation of the clock (for worker processes)."""

    def __init__(self) -> None:
        self.t0 = time.process_time()

    def seconds(self) -> float:
        return time.process_time() - self.t0


# ---------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    freq = psutil.cpu_freq()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": psutil.cpu_count(),
        "cpu_model": model or platform.processor(),
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------------- server metrics

_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")


async def scrape_metrics(http_base: str) -> dict[str, float]:
    """The forum's /metrics as {name{labels}: value}; empty if it has none."""
    try:
        r = await get(http_base, "/metrics", time_limit=60)
    except (OSError, TimeoutError):
        return {}
    if r.status != 200:
        return {}
    out: dict[str, float] = {}
    for line in r.body.decode("utf-8", "replace").splitlines():
        if line.startswith("#"):
            continue
        m = _METRIC.match(line.strip())
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


async def restored_states_checked(http_base: str, timeout_s: float = 7200.0) -> float:
    """Wait until every engine that started from a state file has checked it against its
    background full replay (``mycelium_state_verified``); seconds waited. That replay costs
    minutes of CPU at 10^6 events: measured during it, a page's server CPU includes it."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        m = await scrape_metrics(http_base)
        restored = [k.split("{", 1)[1] for k, v in m.items() if k.startswith("mycelium_state_restored_seq{") and v]
        if all(m.get("mycelium_state_verified{" + labels) == 1 for labels in restored):
            break
        await asyncio.sleep(1)
    return time.monotonic() - t0


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any] | None:
    """What the server says happened between two scrapes: batches, commit time, frames, slow closes.

    None when either scrape failed (a forum without /metrics, or one too busy to answer).
    """
    if not before or not after:
        return None

    def d(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = d("mycelium_commit_batch_events_count")
    out: dict[str, Any] = {
        "accepted": int(
            sum(
                v - before.get(k, 0.0)
                for k, v in after.items()
                if k.startswith("mycelium_events_accepted_total")
            )
        ),
        "refused": int(
            sum(
                v - before.get(k, 0.0)
                for k, v in after.items()
                if k.startswith("mycelium_events_refused_total")
            )
        ),
        "commits": int(batches),
        "mean_batch_events": round(d("mycelium_commit_batch_events_sum") / batches, 1)
        if batches
        else None,
        "mean_commit_ms": round(1000 * d("mycelium_commit_seconds_sum") / batches, 2)
        if batches
        else None,
        "scores_update_ms_per_batch": round(1000 * d("mycelium_scores_update_seconds_sum") / d("mycelium_scores_update_seconds_count"), 3)
        if d("mycelium_scores_update_seconds_count")
        else None,
        "event_frames_sent": int(d("mycelium_event_frames_sent_total")),
        "slow_closed": int(d("mycelium_slow_subscriptions_closed_total")),
        "connections": after.get("mycelium_websocket_connections"),
        "subscriptions": after.get("mycelium_subscriptions"),
    }
    return out


async def head_seq(http_base: str) -> int:
    """The forum's committed head (from /healthz)."""
    import orjson

    r = await get(http_base, "/healthz", time_limit=10)
    if r.status != 200:
        raise RuntimeError(f"/healthz answered {r.status}")
    return int(orjson.loads(r.body)["head_seq"])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def chunked(seq: list[Any], parts: int) -> Iterable[list[Any]]:
    """``seq`` cut into ``parts`` nearly equal slices (round-robin keeps them balanced)."""
    for i in range(parts):
        yield seq[i::parts]
