"""Persisted engine state (forum/statefile.py): a restart serves scores at once and
never trusts the file over the log. Real forum processes, SQLite and PostgreSQL.

* kill -9 with the state file behind the log, restart: the first request after
  the forum listens has scores (as of the file); the tail is applied; the
  background full replay agrees (no mismatch counted); every score view, the
  cheap snapshot, the moral graph and the cases equal those of a forum that
  replayed the whole log with no state file;
* a state file with valid checksums but a lie in it (a target's rating count
  raised): the background full replay finds it: one log line,
  ``mycelium_state_mismatches_total`` counts it, and the replayed scores are served;
* a corrupted file (a flipped byte) is ignored with one log line, and the forum
  replays the log (tests/forum/test_statefile.py: old formats, other code, other
  engines, truncated files, without a process).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from clients.sdk import arbitration as arb
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import derive_key
from forum import statefile
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

pytestmark = pytest.mark.slow

NO_SAVE = 3600.0  # after the save right after start-up, none before the test kills the forum


def _publish(base: str, events: list[SignedEvent]) -> None:
    body = b"\n".join(orjson.dumps(e.envelope) for e in events)
    r = httpx.post(f"{base}/api/v1/events:batch", content=body, timeout=timeout(60))
    assert all(x["accepted"] for x in r.json()["results"]), r.json()


def _get(base: str, path: str) -> Any:
    r = httpx.get(f"{base}{path}", timeout=timeout(30))
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def _head(base: str) -> int:
    return int(_get(base, "/healthz")["head_seq"])


def _metric(base: str, name: str, engine: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=timeout(30)).text
    m = re.search(rf'^{name}{{engine="{engine}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def _until(what: str, check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + timeout(seconds)
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _scores(base: str) -> dict[str, Any]:
    return _get(base, "/api/v1/scores?sort=count&limit=1000")


def _caught_up(base: str) -> dict[str, Any]:
    """Every served document as of the log's head (scores, cheap snapshot, values)."""
    head = _head(base)

    def current() -> dict[str, Any] | None:
        got = [httpx.get(f"{base}{p}", timeout=timeout(30)) for p in ("/api/v1/moral-graph", "/api/v1/cases")]
        if any(r.status_code == 404 for r in got):  # not computed yet
            return None
        mg, cases = (r.json() for r in got)
        s = _scores(base)
        snap = _get(base, "/api/v1/scores:snapshot")
        ok = s["as_of_seq"] == head and (snap["cheap"] or {}).get("as_of_seq") == head
        ok = ok and mg.get("as_of_seq") == head and cases.get("as_of_seq") == head
        return {"scores": s, "cheap": snap["cheap"], "moral_graph": mg, "cases": cases} if ok else None

    return _until("the documents to reach the log's head", current)


def _cheap_views(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    keep = ("count", "mean", "shrunk_mean", "histogram", "criteria")
    return {v["target"]: {k: v.get(k) for k in keep} for v in doc["scores"]}


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 (running sums and a replay add in different orders)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return bool(a == b)


def _story() -> tuple[list[SignedEvent], list[SignedEvent]]:
    """Two batches: the first is in the state file, the second is the tail after it."""
    keys = [derive_key("state-restart", f"agent/{i}") for i in range(12)]
    curator = derive_key("state-restart", "curator")
    cards = [builders.criterion(curator, title=t, description=f"Attending to {t}.", policies=[f"moments of {t}"]) for t in ("care", "honesty")]
    agents = [builders.agent(k, name=f"Agent {i}", about="", owner=f"Owner {i}") for i, k in enumerate(keys)]
    props = [builders.proposal(keys[i], title=f"Idea {i}", text="...") for i in range(4)]
    first = [*cards, *agents, *props]
    first += [builders.rating(k, target=p.id, score=((i + j) % 5 - 2) / 2, criteria={"fairness": 0.5}) for i, k in enumerate(keys) for j, p in enumerate(props) if i != j]
    first += [builders.rating(k, target=keys[(i + 1) % 12].did, score=0.25 * (i % 4)) for i, k in enumerate(keys)]
    first += [builders.rating(k, target=o.did, score=((i * j) % 7 - 3) / 3) for i, k in enumerate(keys) for j, o in enumerate(keys) if abs(i - j) > 1]
    first += [arb.wiser(keys[0], context="When sharing tools", a=cards[0].id, b=cards[1].id, judgement="wiser")]
    later = [builders.rating(k, target=props[0].id, score=0.9, created_at=builders.now_ms() + 1000) for k in keys[1:7]]  # replaces their ratings
    retracted = next(e for e in first if e.event.kind == "rating" and e.event.author == keys[7].did)
    later += [builders.retraction(keys[7], target=retracted.id)]
    later += [builders.rating(k, target=keys[(i + 3) % 12].did, score=-0.5) for i, k in enumerate(keys)]
    # every pair again, new scores: the tail passes the status checkpoint at seq 256 (forum/scores/checkpoints.py)
    later += [builders.rating(k, target=o.did, score=((i + j) % 5 - 2) / 2, created_at=builders.now_ms() + 2000) for i, k in enumerate(keys) for j, o in enumerate(keys) if i != j]
    later += [arb.flag(keys[2], target=keys[3].did, right="livelihood", harm="It took my tools.")]
    return first, later


def test_kill_9_restart_serves_scores_at_once_and_equals_a_replay(tmp_path: Path, database_url: str) -> None:
    db = database_url if database_url.startswith("postgresql") else None
    first, later = _story()
    forum = ForumProcess(tmp_path, db, author_rate=0, address_rate=0, state_save_interval_s=NO_SAVE).start()
    try:
        _publish(forum.url, first)
        forum.kill()  # no state file: an empty log is never written
        assert not (tmp_path / "scores-state.bin").exists()
        forum.start()  # replays the log, then writes the file at once (and not again before the kill)
        head_a = _head(forum.url)
        assert head_a < 256, head_a
        for engine in ("scores", "values"):
            _until(f"{engine} state written at {head_a}", lambda e=engine: _metric(forum.url, "mycelium_state_saved_seq", e) == head_a)
        _publish(forum.url, later)
        head_b = _caught_up(forum.url)["scores"]["as_of_seq"]
        assert head_b > 256, head_b
        forum.kill()  # the state file is behind the log by `later`

        forum.start()
        at_once = _scores(forum.url)  # the first request after the forum listens (the tail may be applied already)
        assert head_a <= at_once["as_of_seq"] <= head_b and at_once["scores"], "scores are not served at once"
        assert _metric(forum.url, "mycelium_state_restored_seq", "scores") == head_a
        restored = _caught_up(forum.url)
        for engine in ("scores", "values"):
            _until(f"{engine} checked against a replay", lambda e=engine: _metric(forum.url, "mycelium_state_verified", e) == 1)
            assert _metric(forum.url, "mycelium_state_mismatches_total", engine) == 0
        assert not [line for line in forum.output if "differ" in line and "full replay" in line]
        forum.stop()

        for f in ("scores-state.bin", "values-state.bin"):
            (tmp_path / f).unlink()
        forum = ForumProcess(tmp_path, db, author_rate=0, address_rate=0, state_save_interval_s=0).start()
        replayed = _caught_up(forum.url)
        assert _metric(forum.url, "mycelium_state_restored_seq", "scores") == 0
        assert not (tmp_path / "scores-state.bin").exists(), "FORUM_STATE_SAVE_INTERVAL_S=0 wrote a state file"
    finally:
        forum.kill()
    assert _close(_cheap_views(restored["scores"]), _cheap_views(replayed["scores"]))
    assert _close(restored["cheap"], replayed["cheap"])
    assert restored["moral_graph"] == replayed["moral_graph"]
    assert restored["cases"] == replayed["cases"]
    assert restored["cases"]["cases"], "the story has a case"


def _rewrite(path: Path, engine: str, change: Any) -> None:
    """Rewrite a state file with valid checksums after ``change(sections)``."""
    sf = statefile.StateFile(path, engine, statefile.code_key(engine))
    header = sf.header()
    assert header is not None
    sections = [sf.section(header, i) for i in range(len(header.sections))]
    change(sections)
    sf.write(header.head, header.head_id, [statefile.dumps(s) for s in sections])


def _saved_then_killed(tmp_path: Path) -> tuple[ForumProcess, dict[str, Any]]:
    """A forum (SQLite) that published the first batch, wrote its state file at the head and was killed."""
    first, _ = _story()
    forum = ForumProcess(tmp_path, None, author_rate=0, address_rate=0, state_save_interval_s=0.2).start()
    try:
        _publish(forum.url, first)
        truth = _caught_up(forum.url)
        head = _head(forum.url)
        _until("scores state written", lambda: _metric(forum.url, "mycelium_state_saved_seq", "scores") == head)
    finally:
        forum.kill()
    return forum, truth


def test_a_lying_state_file_is_replaced_by_the_replay(tmp_path: Path) -> None:
    forum, truth = _saved_then_killed(tmp_path)
    try:
        target = truth["scores"]["scores"][0]["target"]
        real = truth["scores"]["scores"][0]["count"]

        def lie(sections: list[Any]) -> None:
            sections[0]["state"].targets[target].count += 5

        _rewrite(tmp_path / "scores-state.bin", "scores", lie)
        forum.start()
        _until("the replay to replace the lie", lambda: _metric(forum.url, "mycelium_state_mismatches_total", "scores") == 1)
        assert _get(forum.url, f"/api/v1/scores/{target}")["count"] == real
        assert _close(_cheap_views(_caught_up(forum.url)["scores"]), _cheap_views(truth["scores"]))
        lines = [line for line in forum.output if "restored scores differ from a full replay" in line]
        assert len(lines) == 1, forum.output
    finally:
        forum.kill()


def test_a_corrupted_state_file_is_ignored_with_one_line(tmp_path: Path) -> None:
    forum, truth = _saved_then_killed(tmp_path)
    try:
        path = tmp_path / "scores-state.bin"
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF  # in the ledger section: its checksum no longer matches
        path.write_bytes(bytes(data))
        forum.start()
        assert _close(_cheap_views(_caught_up(forum.url)["scores"]), _cheap_views(truth["scores"]))
        lines = [line for line in forum.output if "state file ignored" in line]
        assert len(lines) == 1 and "scores-state.bin" in lines[0] and "checksum" in lines[0], forum.output
        assert _metric(forum.url, "mycelium_state_mismatches_total", "scores") == 0
    finally:
        forum.kill()
