"""The live stream on a real socket: /live notifies, the fragment then carries the new items."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest

from tests.feeds.helpers import Agent, event_id, proposal_body
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForumProcess]:
    srv = ForumProcess(tmp_path, author_rate=0, address_rate=0, sqlite_synchronous="NORMAL").start()
    try:
        yield srv
    finally:
        srv.stop()


def _read_events(url: str, out: queue.Queue[tuple[str, str]], stop: threading.Event) -> None:
    try:
        with httpx2.Client(timeout=httpx2.Timeout(timeout(10), read=timeout(30))) as http, http.stream("GET", url) as r:
            out.put(("status", f"{r.status_code} {r.headers.get('content-type')}"))
            name = ""
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and name:
                    out.put((name, line.split(":", 1)[1].strip()))
                    name = ""
    except httpx2.HTTPError as e:  # the server going away at the end of the test
        if not stop.is_set():
            out.put(("error", repr(e)))


def test_live_stream_notifies_and_fragment_delivers(server: ForumProcess) -> None:
    with httpx2.Client(base_url=server.url, timeout=timeout(10)) as http:
        head = http.get("/healthz").json()["head_seq"]
        got: queue.Queue[tuple[str, str]] = queue.Queue()
        stop = threading.Event()
        reader = threading.Thread(target=_read_events, args=(f"{server.url}/live?kind=proposal&after={head}", got, stop), daemon=True)
        reader.start()
        status = got.get(timeout=timeout(10))
        assert status[1].startswith("200 text/event-stream"), status

        a = Agent("live-sse")
        other = http.post("/api/v1/events", content=orjson.dumps(a.envelope("agent", {"name": "Live", "about": "x"})))
        assert other.status_code == 201  # not a proposal: no notification for it
        env = a.envelope("proposal", proposal_body("Live one"))
        r = http.post("/api/v1/events", content=orjson.dumps(env))
        assert r.status_code == 201
        seq = r.json()["seq"]
        name, data = got.get(timeout=timeout(5))
        assert (name, data) == ("post", str(seq))  # no post text on the stream, only the seq

        fragment = http.get("/fragments/feed", params={"kind": "proposal", "after": head})
        assert f'id="e-{event_id(env)}"' in fragment.text and "Live one" in fragment.text

        retraction = a.envelope("retraction", {"target": event_id(env)})
        assert http.post("/api/v1/events", content=orjson.dumps(retraction)).status_code == 201
        assert got.get(timeout=timeout(5)) == ("retract", event_id(env))
        stop.set()
    server.stop()
    reader.join(timeout(10))
    assert not reader.is_alive()
