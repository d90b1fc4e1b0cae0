"""What a bench run points at (a forum's URLs and the processes to meter) and how it shows progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clients.bench.stats import CpuMeter


@dataclass
class Target:
    """A forum to load: ``http`` base URL and ``ws`` URL; pids to meter when they are known."""

    http: str
    ws: str
    server_pids: list[int] = field(default_factory=list)
    database_pids: list[int] = field(default_factory=list)
    description: dict[str, Any] = field(default_factory=dict)
    profiler: Any = None  # clients.bench.profile.Profiler, when --profile was given

    def profile_start(self, label: str) -> None:
        if self.profiler is not None:
            self.profiler.start(label)

    def profile_stop(self) -> dict[str, Any] | None:
        return self.profiler.stop() if self.profiler is not None else None

    @classmethod
    def from_url(cls, url: str, server_pid: int | None = None) -> Target:
        """From a ws://host:port/ws or http://host:port URL."""
        url = url.rstrip("/")
        if url.startswith("http://"):
            http = url
        elif url.startswith("ws://"):
            http = "http://" + url[len("ws://") :]
            if http.endswith("/ws"):
                http = http[: -len("/ws")]
        else:
            raise ValueError(f"--url must be ws://HOST:PORT/ws or http://HOST:PORT, not {url!r}")
        return cls(
            http=http,
            ws=http.replace("http://", "ws://", 1) + "/ws",
            server_pids=[server_pid] if server_pid else [],
            description={"url": url, "started_by_bench": False, "pid": server_pid},
        )

    def cpu_meter(self, client_pids: list[int]) -> CpuMeter:
        import os

        groups = {"client": [os.getpid(), *client_pids]}
        recursive = {"server"}  # the forum's verify workers (and uvicorn workers) are its children
        detail = set()
        if self.server_pids:
            groups["server"] = list(self.server_pids)
            # The forum's own process (its event loop, writer and hub) apart from its workers.
            groups["server_main"] = list(self.server_pids)
            detail.add("server_main")
        if self.database_pids:
            groups["database"] = list(self.database_pids)
            recursive.add("database")
        return CpuMeter(groups=groups, recursive=recursive, detail=detail)


class Ui:
    """Progress bars (rich, on stderr) and short notes; silent when ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]·[/] {text}")

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A progress bar; yields ``set_completed(n)``."""
        if self.quiet:
            yield lambda n: None
            return
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        with progress:
            tid = progress.add_task(description, total=total)
            yield lambda n: progress.update(tid, completed=n)
