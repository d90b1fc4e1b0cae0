"""Load-generating worker processes: forked, connected, then released together.

On two cores one Python process can be the bottleneck, so every mode runs
its connections in ``--procs`` forked processes. Each worker connects, sets
its ``ready`` event, waits for the shared ``go`` event, runs, and sends one
result (a picklable dict) back through a pipe. A shared counter per worker
feeds the progress bar without any messages.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import traceback
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

_ctx = mp.get_context("fork")

WorkerMain = Callable[["WorkerContext"], Coroutine[Any, Any, dict[str, Any]]]


class WorkerContext:
    """What a worker's coroutine gets: its index, the shared events and its progress counter."""

    def __init__(self, index: int, ready: Any, go: Any, stop: Any, counter: Synchronized) -> None:
        self.index = index
        self._ready = ready
        self._go = go
        self._stop = stop
        self.counter = counter
        self.cpu_at_go: float | None = None

    def report_ready(self) -> None:
        self._ready.set()

    async def wait_go(self, time_limit: float = 600.0) -> None:
        """Wait (without blocking the loop) for the coordinator's start signal."""
        deadline = time.monotonic() + time_limit
        while not self._go.is_set():  # a multiprocessing.Event cannot be awaited: poll it
            if time.monotonic() > deadline:
                raise TimeoutError("no start signal")
            await asyncio.sleep(0.002)
        self.cpu_at_go = time.process_time()

    def should_stop(self) -> bool:
        return bool(self._stop.is_set())

    async def wait_stop(self, time_limit: float = 3600.0) -> None:
        deadline = time.monotonic() + time_limit
        while not self._stop.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110 - a multiprocessing.Event
            await asyncio.sleep(0.02)

    def progress(self, n: int = 1) -> None:
        self.counter.value += n


def _entry(main: WorkerMain, ctx: WorkerContext, pipe: Connection) -> None:
    try:
        t0 = time.process_time()
        result = asyncio.run(main(ctx))
        # CPU seconds of the measured part (from the go signal), else of the whole worker
        result.setdefault(
            "cpu_s", time.process_time() - (ctx.cpu_at_go if ctx.cpu_at_go is not None else t0)
        )
        pipe.send(("ok", result))
    except BaseException as e:
        pipe.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        ctx.report_ready()  # never leave the coordinator waiting
        pipe.close()


class WorkerGroup:
    """N forked workers running ``main``; ``go()`` releases them together."""

    def __init__(self, mains: list[WorkerMain]) -> None:
        self.go_event = _ctx.Event()
        self.stop_event = _ctx.Event()
        self.readies = [_ctx.Event() for _ in mains]
        self.counters = [_ctx.Value("q", 0, lock=False) for _ in mains]
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        self.results: list[dict[str, Any] | None] = [None] * len(mains)
        self.errors: list[str] = []
        for i, main in enumerate(mains):
            parent, child = _ctx.Pipe(duplex=False)
            ctx = WorkerContext(
                i, self.readies[i], self.go_event, self.stop_event, self.counters[i]
            )
            p = _ctx.Process(target=_entry, args=(main, ctx, child), daemon=True)
            p.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(p)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def wait_ready(self, timeout: float = 300.0, tick: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not all(r.is_set() for r in self.readies):
            self._collect()
            if self.errors:
                raise RuntimeError("a bench worker failed:\n" + self.errors[0])
            if time.monotonic() > deadline:
                raise TimeoutError("bench workers did not get ready in time")
            if tick:
                tick()
            time.sleep(0.05)
        self._collect()
        if self.errors:
            raise RuntimeError("a bench worker failed:\n" + self.errors[0])

    def go(self) -> None:
        self.go_event.set()

    def stop(self) -> None:
        self.stop_event.set()

    def progress(self) -> int:
        return sum(int(c.value) for c in self.counters)

    def _collect(self) -> None:
        for i, pipe in enumerate(self.pipes):
            if self.results[i] is None and pipe.poll():
                try:
                    status, value = pipe.recv()
                except EOFError:
                    self.errors.append(f"worker {i} died without a result")
                    self.results[i] = {}
                    continue
                if status == "ok":
                    self.results[i] = value
                else:
                    self.errors.append(value)
                    self.results[i] = {}

    def done(self) -> bool:
        self._collect()
        return all(r is not None for r in self.results)

    def wait(self, timeout: float, tick: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not self.done():
            for i, p in enumerate(self.procs):
                if self.results[i] is None and not p.is_alive() and not self.pipes[i].poll():
                    self.errors.append(f"worker {i} exited with code {p.exitcode} and no result")
                    self.results[i] = {}
            if time.monotonic() > deadline:
                self.stop()
                self.kill()
                raise TimeoutError("bench workers did not finish in time")
            if tick:
                tick()
            time.sleep(0.1)
        for p in self.procs:
            p.join(10)
        if self.errors:
            raise RuntimeError("a bench worker failed:\n" + self.errors[0])
        return [r or {} for r in self.results]

    def kill(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()
        for p in self.procs:
            p.join(5)
