"""What ``forum bench abuse`` measures during each attack, from the normal clients' address.

:class:`Probes` samples the forum's memory (clients/bench/memory.py) every
100 ms, asks ``GET /healthz`` every 20 ms on a kept-alive connection, and runs a
normal publisher/subscriber pair (one small event every 100 ms, delivered live
to the other connection). Besides the percentiles, the summary gives a
timeline for diagnosis: the worst samples with their offsets (seconds since
the probes started) and the intervals during which the forum had more
processes than at the start (a forked state-file writer, forum/statefile.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx2 as httpx
import orjson
import psutil
from websockets.asyncio.client import connect

from clients.bench.memory import growth, tree_memory, tree_size
from clients.sdk import builders
from clients.sdk.keys import derive_key

WORST = 5  # worst samples listed in the timeline


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


def _worst(samples: list[tuple[float, float]]) -> list[list[float]]:
    """[offset s, ms] of the ``WORST`` slowest samples, in time order."""
    top = sorted(samples, key=lambda s: s[1], reverse=True)[:WORST]
    return [[round(t, 2), round(v * 1000, 1)] for t, v in sorted(top)]


class Probes:
    """RSS sampler, /healthz prober and a normal publisher/subscriber pair, run during each attack."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.ws_url = "ws" + url[len("http") :] + "/ws"
        self.proc = psutil.Process(pid)
        self.key = derive_key("bench-abuse-probe", "probe")
        self.n = 0
        self.acked: list[str] = []
        self.reset()

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.memory: list[tuple[int, int, int]] = []
        self.processes: list[tuple[float, int]] = []  # (offset, processes in the forum's tree)
        self.health: list[tuple[float, float]] = []  # (offset, latency)
        self.health_errors = 0
        self.delivery: list[tuple[float, float]] = []  # (offset sent, latency)
        self.sent_at: dict[str, float] = {}
        self.undelivered = 0
        self.marks: dict[str, float] = {}

    def mark(self, what: str) -> None:
        self.marks[what] = round(time.perf_counter() - self.t0, 2)

    def memory_now(self) -> tuple[int, int, int]:
        return tree_memory(self.proc)  # (summed RSS, summed PSS, the forum's own RSS)

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self._rss(stop), self._health(stop), self._subscriber(stop))

    async def _rss(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.memory.append(await asyncio.to_thread(self.memory_now))
            self.processes.append(
                (time.perf_counter() - self.t0, await asyncio.to_thread(tree_size, self.proc))
            )
            await asyncio.sleep(0.1)

    async def _health(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.health.append((t0 - self.t0, time.perf_counter() - t0))
                else:
                    self.health_errors += 1
                await asyncio.sleep(0.02)

    async def _subscriber(self, stop: asyncio.Event) -> None:
        async with (
            connect(self.ws_url, compression=None) as sub,
            connect(self.ws_url, compression=None) as pub,
        ):
            await sub.send(
                orjson.dumps(
                    ["SUBSCRIBE", "probe", {"authors": [self.key.did], "kinds": ["agent"]}]
                ).decode()
            )

            async def receive() -> None:
                async for raw in sub:
                    m = orjson.loads(raw)
                    if m[0] == "EVENT":
                        if (t := self.sent_at.pop(_event_id(m[3]["payload"]), None)) is not None:
                            self.delivery.append((t - self.t0, time.perf_counter() - t))
                    elif m[0] == "CLOSED":  # resubscribe from the live head
                        await sub.send(
                            orjson.dumps(
                                [
                                    "SUBSCRIBE",
                                    "probe",
                                    {"authors": [self.key.did], "kinds": ["agent"]},
                                ]
                            ).decode()
                        )

            async def acks() -> None:
                async for raw in pub:
                    m = orjson.loads(raw)
                    if m[0] == "OK" and m[2]:
                        self.acked.append(m[1])

            tasks = [asyncio.create_task(receive()), asyncio.create_task(acks())]
            try:
                while not stop.is_set():
                    self.n += 1
                    ev = builders.agent(self.key, name=f"probe {self.n}", about="a normal client")
                    self.sent_at[ev.id] = time.perf_counter()
                    await pub.send(orjson.dumps(["PUBLISH", ev.envelope]).decode())
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # the last ones may still be on their way
            finally:
                self.undelivered = len(self.sent_at)
                for t in tasks:
                    t.cancel()

    def forks(self) -> list[list[float]]:
        """[from, to] offsets during which the forum's tree had more processes than at its least."""
        if not self.processes:
            return []
        base = min(n for _, n in self.processes)
        out: list[list[float]] = []
        for t, n in self.processes:
            if n > base:
                if out and t - out[-1][1] < 0.25:
                    out[-1][1] = round(t, 2)
                else:
                    out.append([round(t, 2), round(t, 2)])
        return out

    def summary(self, before: tuple[int, int, int], after: tuple[int, int, int]) -> dict[str, Any]:
        health = [v for _, v in self.health]
        delivery = [v for _, v in self.delivery]
        return growth(self.memory, before, after) | {
            "healthz": {
                "n": len(health),
                "errors": self.health_errors,
                "p50_ms": _p(health, 0.5),
                "p99_ms": _p(health, 0.99),
                "max_ms": _p(health, 1.0),
            },
            "subscriber": {
                "n": len(delivery),
                "undelivered": self.undelivered,
                "p50_ms": _p(delivery, 0.5),
                "p99_ms": _p(delivery, 0.99),
                "max_ms": _p(delivery, 1.0),
            },
            "timeline": {
                **self.marks,
                "worst_healthz": _worst(self.health),
                "worst_subscriber": _worst(self.delivery),
                "more_processes": self.forks(),
            },
        }


def _event_id(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
