"""A real forum in a subprocess for the interoperability tests.

The server is started exactly as an operator would (``forum.server.run`` with
``port=0``) and found through the line it prints once it accepts connections:
``Mycelium listening on http://HOST:PORT``. The tests talk to it only over the
network, through tests/interop/minimal_client.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.timeouts import UNIT, timeout

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"Mycelium listening on (http://\S+)")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout(10)) as resp:
            return json.loads(resp.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=timeout(10)) as resp:
            return str(resp.read().decode("utf-8"))


def start_server(data_dir: Path, **settings: Any) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = data_dir / "stdout.txt", data_dir / "stderr.txt"
    kwargs = ", ".join(f"{k}={v!r}" for k, v in {"port": 0, "data_dir": str(data_dir), **settings}.items())
    code = f"from forum.server import run; from forum.settings import Settings; run(Settings({kwargs}))"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=err)
    deadline = time.monotonic() + timeout(30)
    while time.monotonic() < deadline:
        m = _LISTENING.search(out_path.read_text(errors="replace"))
        if m:
            return Server(m.group(1), proc, err_path)
        if proc.poll() is not None:
            break
        time.sleep(0.05 * UNIT)
    stop_server(proc)
    raise RuntimeError("the forum did not start:\n" + err_path.read_text(errors="replace")[-4000:])


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout(15))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout(10))
