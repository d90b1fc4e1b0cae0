"""A real `forum serve` process for real-socket tests: started on port 0, killed at will."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.timeouts import timeout

_URL = re.compile(r"Mycelium listening on (http://\S+)")


class ForumProcess:
    """``python -m forum`` in a subprocess, configured only through FORUM_* variables."""

    def __init__(self, data_dir: Path, database_url: str | None = None, **settings: object) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
        self.env["FORUM_DATA_DIR"] = str(data_dir)
        self.env["FORUM_PORT"] = str(settings.pop("port", 0))
        self.env["FORUM_LOG_LEVEL"] = "warning"
        if database_url:
            self.env["FORUM_DATABASE_URL"] = database_url
        for k, v in settings.items():
            self.env[f"FORUM_{k.upper()}"] = str(v)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def start(self) -> ForumProcess:
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forum"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: kill() takes worker processes too
        )
        found = threading.Event()

        def pump() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.output.append(line)
                m = _URL.search(line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not found.wait(timeout(30)):
            self.kill()
            raise RuntimeError("forum did not start:\n" + "".join(self.output))
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout(10))
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self._pump.join(timeout(5))
            # Closing the pipe while the pump still reads it would block on its lock.
            if self.proc.stdout and not self._pump.is_alive():
                self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout(15))
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def restart_on_same_port(self) -> ForumProcess:
        port = self.url.rsplit(":", 1)[1]
        self.env["FORUM_PORT"] = port
        deadline = time.monotonic() + timeout(10)
        while True:
            try:
                return self.start()
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
