"""The demo's forum process: ``python -m forum`` on SQLite in a data directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from clients.demo.config import FORUM_SETTINGS


class ForumServer:
    """The demo's forum: ``python -m forum`` in its own process group, configured by FORUM_*."""

    def __init__(self, data_dir: Path, host: str, port: int) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def start(self, timeout: float = 60.0) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
        env.update(FORUM_SETTINGS)
        env.update(
            FORUM_DATA_DIR=str(self.data_dir), FORUM_HOST=self.host, FORUM_PORT=str(self.port)
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forum"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the demo, which then stops the forum in order
        )
        found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                if not found.is_set() and "Mycelium listening on " in line:
                    self.url = line.split("Mycelium listening on ", 1)[1].strip()
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True, name="forum-output").start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError("the forum did not start:\n" + "".join(self.output[-40:]))
        return self.url

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return json.loads(resp.read())


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
