"""``forum bench``: small runs of every mode against a real forum on port 0.

These check the reports' structure and the correctness checks (every
subscriber got every event exactly once, in seq order; the slow subscriber
was closed), never speed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from clients.bench.fanout import FanoutParams, run_fanout
from clients.bench.ingest import IngestParams, run_ingest
from clients.bench.profile import summarize
from clients.bench.query import QueryParams, run_query
from clients.bench.report import compare_table, flatten, new_report
from clients.bench.server import BenchServer
from clients.bench.signing import presign
from clients.bench.stats import LatencyHist
from clients.bench.target import Target, Ui
from clients.sdk.builders import check_envelope
from tests.support.timeouts import timeout

QUIET = Ui(quiet=True)


@pytest.fixture(scope="module")
def forum() -> Iterator[BenchServer]:
    """One forum for the module (SQLite, rate limits off, as --start sets it up)."""
    # A short subscriber queue, so the fan-out test's slow subscriber is closed within a few hundred events.
    server = BenchServer("sqlite", {"SUBSCRIBER_QUEUE_FRAMES": "100"}).start()
    try:
        yield server
    finally:
        server.stop()


def _target(server: BenchServer) -> Target:
    t = Target.from_url(server.ws_url, server.pid)
    t.description = server.describe()
    return t


# ---------------------------------------------------------------------------- pure parts


def test_latency_histogram_percentiles_and_merge() -> None:
    a, b = LatencyHist(), LatencyHist()
    for i in range(1, 1001):
        (a if i % 2 else b).add(i / 1000)  # 1 ms .. 1 s
    h = LatencyHist().merge(a).merge(b)
    assert h.count == 1000
    assert h.max == 1.0
    assert h.percentile(50) == pytest.approx(0.5, rel=0.006)
    assert h.percentile(99) == pytest.approx(0.99, rel=0.006)
    assert h.percentile(100) == 1.0
    s = h.summary_ms()
    assert set(s) == {"count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"}
    assert LatencyHist().summary_ms()["p99_ms"] is None


def test_presigned_events_pass_the_forums_checks() -> None:
    pre = presign(30, kind="rating", authors=3, procs=1)
    assert len(pre) == len(set(pre.ids)) == 30
    for env_json, eid in zip(pre.envelopes, pre.ids, strict=True):
        assert check_envelope(orjson.loads(env_json)).id == eid
    assert pre.frames[0][0] == 0x81  # a final, masked text frame
    assert pre.frames[0][1] & 0x80


def test_profile_summary_reads_py_spy_raw_stacks() -> None:
    raw = "\n".join(
        [
            'process 1:"python -m forum";thread (0x1): "MainThread";run_forever (asyncio/base_events.py:600);Ingest._writer (forum/ingest.py:170);Store.write_batch (forum/store.py:120) 30',
            'process 1:"python -m forum";thread (0x2): "verify_0";_worker (concurrent/futures/thread.py:83);check_chunk (forum/verifypool.py:63);verify (forum/protocol/identity.py:90);crypto_sign_open (nacl/bindings/crypto_sign.py:90) 70',
        ]
    )
    s = summarize(raw)
    assert s["samples"] == 100
    assert s["threads"] == {"verify workers": 70.0, "event loop": 30.0}
    assert s["categories"] == {
        "signature check (libsodium, GIL released)": 70.0,
        "database (SQLAlchemy, drivers)": 30.0,
    }
    assert s["self_top"][0] == ["crypto_sign_open (bindings/crypto_sign.py)", 70.0]
    assert ["Ingest._writer (forum/ingest.py)", 30.0] in s["inclusive_top"]


def test_compare_gives_ratios() -> None:
    a = new_report("ingest", {}, {"accepted_per_s": 1000.0, "ok_latency": {"p99_ms": 10.0}})
    b = new_report("ingest", {}, {"accepted_per_s": 1500.0, "ok_latency": {"p99_ms": 5.0}})
    rows = {
        r[0]: r[1:]
        for r in zip(*(c._cells for c in compare_table(a, b, "a", "b").columns), strict=True)
    }
    assert rows["accepted_per_s"] == ("1,000", "1,500", "1.50×")
    assert rows["ok_latency.p99_ms"] == ("10.000", "5.000", "0.50×")
    assert dict(flatten({"x": [{"y": 1}]})) == {"x.0.y": 1}


# ---------------------------------------------------------------------------- against a forum


@pytest.mark.slow
def test_ingest_reports_rate_latency_and_idle_effect(forum: BenchServer) -> None:
    p = IngestParams(
        events=400,
        connections=3,
        window=50,
        procs=2,
        warmup=50,
        idle_subscribers=20,
        timeout=timeout(60),
    )
    res = run_ingest(_target(forum), p, QUIET)
    assert [ph["idle_subscribers"] for ph in res["phases"]] == [0, 20]
    for ph in res["phases"]:
        assert ph["accepted"] == 400 and ph["answered"] == 400
        assert ph["errors"] == {}
        assert ph["accepted_per_s"] > 0
        assert ph["ok_latency"]["count"] == 400
        assert (
            ph["ok_latency"]["p50_ms"] <= ph["ok_latency"]["p99_ms"] <= ph["ok_latency"]["max_ms"]
        )
        assert {"client_cores", "server_cores", "machine_cores_busy", "limited_by"} <= set(
            ph["cpu"]
        )
        assert ph["server_metrics"]["accepted"] == 400
    idle = res["phases"][1]["idle"]
    assert idle["connected"] == idle["live"] == 20
    assert idle["frames"].get("EVENT", 0) == 0  # they match nothing that was published
    assert set(res["idle_effect"]) == {
        "baseline_per_s",
        "with_idle_per_s",
        "ratio",
        "drop_pct",
        "within_10pct",
    }


@pytest.mark.slow
def test_fanout_delivers_every_event_once_in_order_and_closes_the_slow_one(
    forum: BenchServer,
) -> None:
    p = FanoutParams(
        subscribers=30,
        rate=200,
        duration=2,
        slow_subscriber=True,
        procs=2,
        drain=timeout(20),
        text_bytes=2000,
        sample=1,
    )
    res = run_fanout(_target(forum), p, QUIET)
    assert len(res["phases"]) == 2
    for ph in res["phases"]:
        chk = ph["check"]
        assert chk["ok"], chk
        assert chk["accepted_events"] == 400
        assert chk["delivered"] == chk["expected_deliveries"] == 400 * 30
        assert chk["missing"] == chk["extra"] == chk["out_of_order"] == chk["mismatched"] == 0
        assert chk["witness_missing"] == chk["witness_duplicates"] == chk["unknown_frames"] == 0
        assert chk["distinct_seqs"] == 400
        assert ph["latency"]["count"] == 400 * 30
    assert res["slow"]["closed_by_server"], res["slow"]
    assert "too slow" in res["slow"]["closed_reason"]
    assert res["slow_effect"]["slow_closed"] is True
    assert res["slow_effect"]["p99_ratio"] > 0


@pytest.mark.slow
def test_query_reads_every_path(forum: BenchServer) -> None:
    res = run_query(
        _target(forum), QueryParams(requests=140, concurrency=4, seed=30, procs=2, warmup=14), QUIET
    )
    assert res["requests"] == 140 and res["errors"] == {}
    assert res["log_head"] >= 30
    assert res["non_2xx"] == 0, res["paths"]
    assert any(p.startswith("/feeds/") for p in res["paths"])
    assert sum(r["latency"]["count"] for r in res["paths"].values()) == 140


@pytest.mark.slow
def test_cli_ingest_starts_a_forum_and_writes_a_report_that_compare_reads(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        done = subprocess.run(
            [sys.executable, "-m", "clients", "bench", "ingest", "--start", "sqlite", "-n", "200", "-c", "2",
             "--warmup", "0", "--quiet", "--json-file", str(path)],
            capture_output=True, text=True, timeout=timeout(120), check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "accepted_per_s" in done.stdout
    report = orjson.loads(a.read_bytes())
    assert report["bench"] == "forum-bench" and report["mode"] == "ingest"
    assert report["server"]["started_by_bench"] and report["server"]["database"] == "sqlite"
    assert report["server"]["settings"]["FORUM_AUTHOR_RATE"] == "0"
    assert report["results"]["phases"][0]["accepted"] == 200
    assert {"cpus", "loadavg", "python"} <= set(report["machine"])
    done = subprocess.run(
        [sys.executable, "-m", "clients", "bench", "compare", str(a), str(b)],
        capture_output=True, text=True, timeout=timeout(60), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "accepted_per_s" in done.stdout and "×" in done.stdout


@pytest.mark.slow  # the CLI imports every command module: seconds on a busy machine
def test_cli_refuses_url_and_start_together() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clients", "bench", "ingest", "--start", "sqlite", "--url", "ws://127.0.0.1:1/ws"],
        capture_output=True, text=True, timeout=timeout(60), check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "exactly one of --url" in done.stderr


def test_bench_abuse_refuses_an_unknown_attack_before_starting_anything() -> None:
    from typer.testing import CliRunner

    from clients.bench.abuse import ATTACKERS, ATTACKS
    from clients.cli.app import app

    assert set(ATTACKS) == set(ATTACKERS)  # every documented attack has an attacker
    res = CliRunner().invoke(app, ["bench", "abuse", "--attack", "nope"])
    assert res.exit_code == 2 and "unknown attack 'nope'" in res.output


@pytest.mark.slow
def test_bench_abuse_keeps_its_filled_forum_in_data_dir_and_reuses_it(tmp_path: Path) -> None:
    """--data-dir: the first run fills the log and leaves the forum there, the second reuses
    it without filling; a directory filled with other options is refused. Each report has
    the per-attack timeline and no traceback."""
    data = tmp_path / "forum"
    args = [sys.executable, "-m", "clients", "bench", "abuse", "--proposals", "4", "--proposal-kb", "1",
            "--ratings", "0", "--rated-agents", "0", "--attack", "scores-listing", "--seconds", "1",
            "--settle", "0", "--data-dir", str(data)]  # fmt: skip
    heads = []
    for n in (1, 2):
        path = tmp_path / f"run{n}.json"
        done = subprocess.run([*args, "--json-file", str(path)], capture_output=True, text=True, timeout=timeout(300), check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert ("reused the log of" in done.stderr) == (n == 2), done.stderr
        results = orjson.loads(path.read_bytes())["results"]
        assert results["tracebacks"] == [] and results["verify"]["ok"]
        timeline = results["attacks"]["scores-listing"]["timeline"]
        assert {"attacker_started", "attacker_done", "worst_healthz", "worst_subscriber", "more_processes"} <= set(timeline)
        heads.append(results["params"]["proposals"])
    assert heads == [4, 4] and (data / "forum.db").exists()
    done = subprocess.run([*args[:6], "5", *args[7:]], capture_output=True, text=True, timeout=timeout(120), check=False)
    assert done.returncode != 0 and "holds another log" in done.stdout + done.stderr


@pytest.mark.slow
def test_cli_fanout_generator_ceiling_relays_every_event_once(tmp_path: Path) -> None:
    """--generator-ceiling: the same publisher and subscribers against the minimal relay
    (clients/bench/blast.py); the delivery check still runs, and the report says so."""
    path = tmp_path / "gc.json"
    done = subprocess.run(
        [sys.executable, "-m", "clients", "bench", "fanout", "--generator-ceiling", "-s", "20", "-r", "100",
         "-d", "1", "--drain", str(timeout(10)), "--quiet", "--json-file", str(path)],
        capture_output=True, text=True, timeout=timeout(120), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = orjson.loads(path.read_bytes())
    assert report["server"]["generator_ceiling"] is True
    chk = report["results"]["check"]
    assert chk["ok"] and chk["delivered"] == chk["expected_deliveries"] == 100 * 20, chk
    done = subprocess.run(
        [sys.executable, "-m", "clients", "bench", "fanout", "--generator-ceiling", "--start", "sqlite"],
        capture_output=True, text=True, timeout=timeout(60), check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "no --url or --start" in done.stdout + done.stderr
