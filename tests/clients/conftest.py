"""Fixtures for the client tests: a real forum started with ``forum serve`` (our CLI) on port 0.

``forum_serve`` yields a :class:`ServeProcess`: ``url``/``ws_url`` once it
listens, ``kill()`` (SIGKILL), ``stop()`` (SIGINT) and ``start()`` again on
the same port and database, so tests can restart the server under a client.
Rate limits are off (through FORUM_* variables, as an operator would set them).

``tamper_event`` changes a stored event in a forum's SQLite database behind its
back, as an attacker holding the database could: the forum then serves a forged
or unreadable event, which is how the client tests meet those for real.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.timeouts import timeout

_LISTENING = re.compile(r"Mycelium listening on (http://\S+)")


def tamper_event(database: Path, event_id: str, column: str, value: str) -> None:
    """Overwrite the stored ``payload`` or ``sig`` of one event in a forum's SQLite database."""
    if column not in ("payload", "sig"):
        raise ValueError(f"not a column to tamper with: {column!r}")
    with contextlib.closing(sqlite3.connect(database, timeout=timeout(10))) as db, db:
        changed = db.execute(f"UPDATE events SET {column} = ? WHERE id = ?", (value, event_id))
        if changed.rowcount != 1:
            raise LookupError(f"no stored event {event_id}")


class ServeProcess:
    """``python -m clients serve --port P --data-dir D [--database-url U]`` in a subprocess."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = 0
        self.url = ""
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
        self.env.update(FORUM_AUTHOR_RATE="0", FORUM_ADDRESS_RATE="0", FORUM_LOG_LEVEL="warning")

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def start(self) -> ServeProcess:
        """Start (again, on the same port once one was picked); returns when it listens."""
        deadline = time.monotonic() + timeout(20)
        while True:
            try:
                return self._start_once()
            except RuntimeError:
                if not self.port or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the old socket may linger a moment

    def _start_once(self) -> ServeProcess:
        cmd = [
            sys.executable,
            "-m",
            "clients",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        self.output = []
        self.url = ""
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                if (m := _LISTENING.search(line)) and not found.is_set():
                    self.url = m.group(1)
                    found.set()
            found.set()  # the process ended (without listening, if url is still empty)

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not found.wait(timeout(30)) or not self.url:
            self.kill()
            raise RuntimeError("forum serve did not start:\n" + "".join(self.output))
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, open connections are cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout(10))
        self._reap()

    def stop(self) -> None:
        """SIGINT: a graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout(15))
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self._pump.join(timeout(5))
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def forum_serve(tmp_path: Path) -> Iterator[ServeProcess]:
    """A started forum on SQLite in ``tmp_path``, killed after the test."""
    server = ServeProcess(tmp_path / "forum").start()
    try:
        yield server
    finally:
        server.kill()
