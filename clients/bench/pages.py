#!/usr/bin/env python
"""Benchmark of the public pages with a large log (not a test: run it by hand).

    python -m clients.bench.pages --events 1000000 [--postgres]

1. **Load.** Generates a forum of ``--events`` pre-signed events (agents,
   communities, proposals, outcome reports, ratings with criteria and notes,
   retractions; a few proposals are "hot" and draw thousands of ratings) and
   bulk-loads them through :meth:`forum.store.Store.write_batch` in batches of
   10,000. The database is kept in ``--data-dir`` and reused by later runs with
   the same ``--events`` (SQLite), so the load happens once.
2. **Plans.** Runs every page once in process with every SQL statement captured,
   then prints each statement's query plan (``EXPLAIN QUERY PLAN`` on SQLite,
   ``EXPLAIN`` on PostgreSQL) and flags any that reads a table without an index.
   The in-process app is the whole forum (API, public web, scores engine,
   started through its lifespan after the engine replayed the log).
3. **Latency in process.** The same app (no HTTP) under ``--concurrency``
   concurrent requests: p50 / p90 / p99 per page.
4. **Latency, real server.** ``python -m forum`` (uvicorn, scores engine on) on
   the same database; the benchmark waits until the engine has replayed the log
   and fitted bridging, then loads each page over HTTP with ``--concurrency``
   concurrent clients and reports p50 / p90 / p99 and throughput.

Everything runs on this machine: the client competes with the server for the
CPU, so the HTTP figures are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
import nacl.signing  # noqa: E402
import orjson  # noqa: E402
from sqlalchemy import event as sa_event  # noqa: E402
from sqlalchemy import text  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from clients.bench.cpu import postmaster_pid, process_cpu_s  # noqa: E402
from clients.bench.stats import restored_states_checked  # noqa: E402
from clients.launch import ForumProcess, PostgresServer  # noqa: E402
from feeds.reader import Reader  # noqa: E402
from forum.db import create_engine, migrate  # noqa: E402
from forum.protocol.events import Event, refs_of  # noqa: E402
from forum.protocol.identity import did_from_public_key, sign  # noqa: E402
from forum.settings import Settings  # noqa: E402
from forum.store import Accepted, Store  # noqa: E402

CORPUS = ROOT / "clients" / "demo" / "data" / "corpus.json"
BATCH = 10_000
DAY_MS = 86_400_000


# --------------------------------------------------------------------------- data


@dataclass
class Key:
    signing: nacl.signing.SigningKey
    did: str


def make_key(label: str) -> Key:
    sk = nacl.signing.SigningKey(hashlib.sha256(label.encode()).digest())
    return Key(sk, did_from_public_key(sk.verify_key.encode()))


@dataclass
class Plan:
    """The ids the benchmark visits, known once the log is generated."""

    hot: str = ""
    typical: str = ""
    outcome: str = ""
    tag: str = ""
    community: str = ""
    agent: str = ""
    counts: dict[str, int] = field(default_factory=dict)


class Generator:
    """A deterministic forum of ``n`` events, produced in batches of signed events."""

    def __init__(self, n: int, seed: int = 1) -> None:
        self.n = n
        self.rng = random.Random(seed)
        corpus = json.loads(CORPUS.read_text("utf-8"))
        self.texts = [(p["title"], p["summary"], p["text"], p["tags"], p["criteria"], p["metrics"]) for p in corpus["proposals"]]
        self.criteria = [c["slug"] for c in corpus["criteria"]]
        self.n_agents = max(50, n // 500)
        self.n_communities = max(10, n // 5000)
        self.agents = [make_key(f"bench-agent-{i}") for i in range(self.n_agents)]
        self.communities = [make_key(f"bench-community-{i}") for i in range(self.n_communities)]
        self.proposals: list[tuple[str, int]] = []  # (id, author index)
        self.outcomes: list[str] = []
        self.plan = Plan(counts={})
        self.hot_index = -1
        self.t0 = int(time.time() * 1000) - 365 * DAY_MS
        self.step = max(1, (365 * DAY_MS) // max(n, 1))
        self.made = 0

    def _event(self, key: Key, kind: str, body: dict[str, Any]) -> Event:
        created_at = self.t0 + self.made * self.step
        self.made += 1
        payload = orjson.dumps({"v": 1, "kind": kind, "author": key.did, "created_at": created_at, "body": body}).decode()
        eid = hashlib.sha256(payload.encode()).hexdigest()
        self.plan.counts[kind] = self.plan.counts.get(kind, 0) + 1
        return Event(
            id=eid,
            kind=kind,
            author=key.did,
            created_at=created_at,
            body=body,
            payload=payload,
            sig=sign(key.signing, payload),
            refs=refs_of(kind, body),
            tags=tuple(body.get("tags", ())) if kind == "proposal" else (),
        )

    def _profiles(self) -> Iterator[Event]:
        for i, k in enumerate(self.agents):
            yield self._event(k, "agent", {"name": f"Agent {i}", "about": f"Benchmark agent number {i}; it proposes and rates."})
        for i, k in enumerate(self.communities):
            yield self._event(k, "community", {"name": f"Community {i}", "about": "A benchmark community that tries proposals.", "place": f"Town {i % 37}"})

    def _proposal(self) -> Event:
        a = self.rng.randrange(self.n_agents)
        title, summary, text_, tags, criteria, _ = self.texts[len(self.proposals) % len(self.texts)]
        body = {"title": f"{title} #{len(self.proposals)}", "summary": summary, "text": text_, "tags": tags, "criteria": criteria}
        ev = self._event(self.agents[a], "proposal", body)
        self.proposals.append((ev.id, a))
        return ev

    def _outcome(self) -> Event:
        hot = self.plan.hot
        pid = hot if hot and self.rng.random() < 0.005 else self.proposals[self.rng.randrange(len(self.proposals))][0]
        metrics = self.texts[self.rng.randrange(len(self.texts))][5]
        done = self.rng.random() < 0.7
        body = {
            "proposal": pid,
            "status": "completed" if done else "running",
            "verdict": self.rng.choice(["success", "failure", "mixed", "inconclusive"]) if done else None,
            "period": {"start": "2026-01-01", "end": "2026-06-30"},
            "metrics": [
                {**m, "observed": round(m["baseline"] * self.rng.uniform(0.7, 1.4), 1), "n": self.rng.randint(20, 2000)}
                for m in metrics
            ],
            "summary": "We ran the pilot as proposed. Figures below; **more** detail in the evidence.",
            "evidence": ["https://example.org/report"],
        }
        ev = self._event(self.communities[self.rng.randrange(self.n_communities)], "outcome", body)
        self.outcomes.append(ev.id)
        if pid == hot and not self.plan.outcome:
            self.plan.outcome = ev.id
        return ev

    def _rating(self) -> Event:
        r = self.rng.random()
        author_idx: int | None = None
        if r < 0.005 and self.plan.hot:
            target = self.plan.hot
            author_idx = self.proposals[self.hot_index][1]
        elif r < 0.10 and self.outcomes:
            target = self.outcomes[self.rng.randrange(len(self.outcomes))]
        elif r < 0.14:
            target = self.agents[self.rng.randrange(self.n_agents)].did
        else:
            pool = len(self.proposals)
            i = self.rng.randrange(pool) if self.rng.random() < 0.5 else pool - 1 - self.rng.randrange(min(300, pool))
            target, author_idx = self.proposals[i]
        while True:
            rater = self.rng.randrange(self.n_agents)
            if rater != author_idx and self.agents[rater].did != target:
                break
        score = round(self.rng.uniform(-1, 1), 2)
        crit = {c: round(max(-1.0, min(1.0, score + self.rng.uniform(-0.3, 0.3))), 2) for c in self.rng.sample(self.criteria, 2)}
        body: dict[str, Any] = {"target": target, "score": score, "criteria": crit}
        if self.rng.random() < 0.05:
            body["note"] = "Benchmark note: the plan is clear, the costs less so."
        return self._event(self.agents[rater], "rating", body)

    def events(self) -> Iterator[Event]:
        yield from self._profiles()
        while self.made < self.n:
            r = self.rng.random()
            if not self.proposals or r < 0.02:
                yield self._proposal()
                if len(self.proposals) == 100:
                    self.plan.hot, self.hot_index = self.proposals[99][0], 99
                if len(self.proposals) == 2000:
                    self.plan.typical = self.proposals[1999][0]
            elif r < 0.03:
                yield self._outcome()
            elif r < 0.0305 and len(self.proposals) > 3000:
                pid, a = self.proposals[self.rng.randrange(2000, len(self.proposals))]
                if pid not in (self.plan.hot, self.plan.typical):
                    yield self._event(self.agents[a], "retraction", {"target": pid, "reason": "withdrawn in the benchmark"})
            else:
                yield self._rating()
        self.plan.tag = self.texts[99 % len(self.texts)][3][0]
        self.plan.community = self.communities[0].did
        self.plan.agent = self.agents[0].did
        self.plan.typical = self.plan.typical or self.proposals[len(self.proposals) // 2][0]

    def batches(self, size: int = BATCH) -> Iterator[list[Event]]:
        batch: list[Event] = []
        for ev in self.events():
            batch.append(ev)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


async def load(url: str, n: int, plan_path: Path) -> Plan:
    engine = create_engine(url, sqlite_synchronous="NORMAL")
    await migrate(engine)
    store = Store(engine)
    existing = await store.count()
    if existing and plan_path.exists():  # noqa: ASYNC240 - a script, not a server
        plan = Plan(**json.loads(plan_path.read_text()))  # noqa: ASYNC240
        if plan.counts and sum(plan.counts.values()) == existing:
            print(f"reusing the log in place: {existing:,} events")
            await engine.dispose()
            return plan
    if existing:
        raise SystemExit(f"the database already holds {existing:,} events from another run; use --fresh")
    gen = Generator(n)
    t0 = time.perf_counter()
    written = refused = 0
    for batch in gen.batches():
        results = await store.write_batch(batch)
        ok = sum(isinstance(r, Accepted) for r in results)
        written += ok
        refused += len(results) - ok
        if written // 100_000 != (written - ok) // 100_000:
            rate = written / (time.perf_counter() - t0)
            print(f"  {written:>9,} events written ({rate:,.0f}/s, signing included)", flush=True)
    took = time.perf_counter() - t0
    print(f"loaded {written:,} events in {took:.0f} s ({written / took:,.0f}/s, signing included); {refused} refused")
    if store.postgres:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    plan = gen.plan
    # Count what is stored (a second retraction of the same proposal is refused, etc.).
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT kind, count(*) FROM events GROUP BY kind"))).all()
    plan.counts = {k: int(c) for k, c in rows}
    plan_path.write_text(json.dumps(plan.__dict__))  # noqa: ASYNC240
    await engine.dispose()
    return plan


# --------------------------------------------------------------------------- pages


def search_words() -> tuple[str, str]:
    """A word every copy of one corpus proposal has (common), and two words together (narrower)."""
    corpus = json.loads(CORPUS.read_text("utf-8"))
    words = [w.strip(".,;:()").lower() for w in corpus["proposals"][0]["title"].split()]
    words = [w for w in words if w.isalpha() and len(w) > 3] or ["library"]
    long = sorted(words, key=len, reverse=True)
    return long[0], " ".join(long[:2])


def page_paths(plan: Plan) -> list[tuple[str, str, int]]:
    """(name, path, weight): weight scales the number of requests."""
    one, two = search_words()
    return [
        ("home", "/", 4),
        ("proposal (hot)", f"/proposals/{plan.hot}", 4),
        ("proposal (typical)", f"/proposals/{plan.typical}", 4),
        ("ranked: top", "/proposals?sort=top", 4),
        ("search: one common word", f"/search?q={one}", 4),
        ("home, one tag", f"/?tag={plan.tag}", 1),
        ("home, one community", f"/?community={plan.community}", 1),
        ("ranked: agreement", "/proposals?sort=agreement", 1),
        ("ranked: what worked", "/proposals?sort=success", 1),
        ("ranked: top, one tag", f"/proposals?sort=top&tag={plan.tag}", 1),
        ("ranked: tried by a community", f"/proposals?sort=success&community={plan.community}", 1),
        ("search: two words, proposals", f"/search?q={two.replace(' ', '+')}&kind=proposal", 1),
        ("search: newest first", f"/search?q={one}&sort=new", 1),
        ("search API", f"/api/v1/search?q={one}", 1),
        ("outcome", f"/outcomes/{plan.outcome}", 1),
        ("community", f"/communities/{plan.community}", 1),
        ("communities directory", "/communities", 1),
        ("agent", f"/agents/{plan.agent}", 1),
        ("API page", "/api", 1),
        ("feed all.atom", "/feeds/all.atom", 1),
        ("feed of a proposal", f"/feeds/proposals/{plan.hot}.json", 1),
    ]


@contextlib.asynccontextmanager
async def full_app(url: str, data_dir: Path) -> AsyncIterator[Starlette]:
    """The whole forum app (API, public web, scores engine) in this process, started, scores replayed."""
    from feeds.site import create_app

    app = create_app(Settings(data_dir=data_dir, database_url=url, author_rate=0, address_rate=0, address_read_rate=0))
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.scores.ready.wait(), 1800)
        yield app


_NO_INDEX = {
    "sqlite": re.compile(r"\bSCAN (events|event_refs|event_tags|ratings)\b(?!.*\bUSING (COVERING )?INDEX\b)"),
    "postgresql": re.compile(r"Seq Scan on (events|event_refs|event_tags|ratings)\b"),
}


async def explain_pages(url: str, plan: Plan, data_dir: Path) -> list[str]:
    """Every SQL statement each page runs, with its plan; returns the statements lacking an index."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        captured.append((statement, parameters))

    bad: list[str] = []
    async with full_app(url, data_dir) as app, httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://bench") as client:
        store = app.state.store
        engine = store.engine
        # Pages query through feeds.reader.Reader: a sync engine of its own on SQLite, the store's engine on PostgreSQL;
        # the search API queries through the store's engine.
        reader = app.state.feeds_reader = Reader(store)
        sync_engines = [e for e in (reader.sync_engine, engine.sync_engine) if e is not None]
        for e in sync_engines:
            sa_event.listen(e, "before_cursor_execute", capture)
        dialect = engine.dialect.name
        for name, path, _ in page_paths(plan):
            captured.clear()
            r = await client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            first: dict[str, Any] = {}
            for stmt_text, p in captured:
                first.setdefault(stmt_text, _freeze(p))
            statements = list(first.items())  # each distinct statement once, with its first parameters
            print(f"\n### {name}: GET {path[:90]}  ({len(captured)} statements, {len(statements)} distinct)")
            for e in sync_engines:
                sa_event.remove(e, "before_cursor_execute", capture)
            try:
                async with engine.connect() as conn:
                    for statement, params in statements:
                        prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
                        rows = (await conn.exec_driver_sql(prefix + statement, _thaw(params))).all()
                        lines = [str(r[-1]) for r in rows] if dialect == "sqlite" else [str(r[0]) for r in rows]
                        short = " ".join(statement.split())
                        print(f"\n  {short[:400]}{' ...' if len(short) > 400 else ''}")
                        for ln in lines:
                            print(f"      {ln}")
                        if any(_NO_INDEX[dialect].search(ln) for ln in lines):
                            bad.append(f"{name}: {short[:200]}")
                            print("      ^^^ reads a table without an index")
            finally:
                for e in sync_engines:
                    sa_event.listen(e, "before_cursor_execute", capture)
    return bad


def _freeze(p: Any) -> Any:
    if isinstance(p, dict):
        return ("dict", tuple(sorted(p.items())))
    if isinstance(p, list | tuple):
        return ("seq", tuple(p))
    return p


def _thaw(p: Any) -> Any:
    if isinstance(p, tuple) and len(p) == 2 and p[0] == "dict":
        return dict(p[1])
    if isinstance(p, tuple) and len(p) == 2 and p[0] == "seq":
        return tuple(p[1])
    return p


# --------------------------------------------------------------------------- latency


@dataclass
class Figures:
    name: str
    concurrency: int
    n: int
    p50: float
    p90: float
    p99: float
    max: float
    rps: float
    size: int
    cpu_ms: float | None = None  # the server process's CPU time per request (all its threads)
    db_ms: float | None = None  # PostgreSQL's CPU time per request (its processes)

    def row(self) -> str:
        cpu = f"{self.cpu_ms:.1f}" if self.cpu_ms is not None else "-"
        db = f"{self.db_ms:.1f}" if self.db_ms is not None else "-"
        return (
            f"| {self.name} | {self.concurrency} | {self.n} | {self.p50:.1f} | {self.p90:.1f} | {self.p99:.1f} | {self.max:.1f} | "
            f"{self.rps:.0f} | {cpu} | {db} | {self.size / 1024:.0f} KiB |"
        )


HEADER = "| page | concurrent | requests | p50 ms | p90 ms | p99 ms | max ms | req/s | server CPU ms/req | PostgreSQL CPU ms/req | size |\n" + "|---|" + "---:|" * 10


async def measure(
    client: Any, name: str, path: str, requests: int, concurrency: int, pid: int | None = None, db_pid: int | None = None
) -> Figures:
    for _ in range(min(20, requests)):  # warm up caches and connections
        r = await client.get(path)
        assert r.status_code == 200, (path, r.status_code)
    size = len(r.content)
    latencies: list[float] = []
    todo = iter(range(requests))

    async def worker() -> None:
        for _ in todo:
            t = time.perf_counter()
            resp = await client.get(path)
            latencies.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, (path, resp.status_code)

    cpu0, db0 = process_cpu_s(pid), process_cpu_s(db_pid, children=True)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    cpu1, db1 = process_cpu_s(pid), process_cpu_s(db_pid, children=True)
    n = len(latencies)
    cpu_ms = (cpu1 - cpu0) * 1000 / n if cpu0 is not None and cpu1 is not None else None
    db_ms = (db1 - db0) * 1000 / n if db0 is not None and db1 is not None else None
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return Figures(name, concurrency, n, q[49], q[89], q[98], max(latencies), n / wall, size, cpu_ms, db_ms)


async def _measure_pages(
    client: Any, plan: Plan, requests: int, levels: list[int], pid: int | None = None, db_pid: int | None = None
) -> list[Figures]:
    """The main pages (weight 4) at every concurrency level, the others at the highest."""
    out = []
    for name, path, weight in page_paths(plan):
        for c in levels if weight == 4 else levels[-1:]:
            out.append(await measure(client, name, path, max(50, requests * weight // 4), c, pid, db_pid))
            print(out[-1].row(), flush=True)
    return out


async def latency_inprocess(url: str, plan: Plan, data_dir: Path, requests: int, levels: list[int]) -> list[Figures]:
    async with full_app(url, data_dir) as app, httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://bench") as client:
        return await _measure_pages(client, plan, requests, levels)


@dataclass
class RawResponse:
    status_code: int
    content: bytes


def _quickack(writer: asyncio.StreamWriter) -> None:
    """Acknowledge at once. On loopback (MSS 64 KiB) Linux acknowledges a response's one segment only
    after its delayed-ACK timer (40 ms) while the server waits for that ACK to send the rest: a response
    of 16 to 64 KiB would take 40 ms for nothing (not so on real networks: the bench should not measure it)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the CPU with the
    server, so it must cost as little as possible (httpx costs about a millisecond a request)."""

    def __init__(self, url: str, connections: int) -> None:
        m = re.match(r"http://([^:/]+):(\d+)", url)
        assert m, url
        self.host, self.port = m.group(1), int(m.group(2))
        self.size = connections
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.opened = 0

    async def get(self, path: str, params: dict[str, Any] | None = None) -> RawResponse:
        if params:
            path += ("&" if "?" in path else "?") + "&".join(f"{k}={v}" for k, v in params.items())
        if self.pool.empty() and self.opened < self.size:
            self.opened += 1
            conn = await asyncio.open_connection(self.host, self.port)
        else:
            conn = await self.pool.get()
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/html\r\n\r\n".encode()
        reader, writer = conn
        _quickack(writer)
        writer.write(request)
        try:
            line = await reader.readline()
        except ConnectionResetError:
            line = b""
        if not line:  # the server closed (or reset) an idle keep-alive connection: open a new one
            writer.close()
            conn = reader, writer = await asyncio.open_connection(self.host, self.port)
            _quickack(writer)
            writer.write(request)
            line = await reader.readline()
        _quickack(writer)  # quick-ACK mode does not last: arm it again for the body
        status = int(line.split()[1])
        length, chunked = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while (n := int((await reader.readline()).strip(), 16)) > 0:
                parts.append(await reader.readexactly(n))
                await reader.readline()
            await reader.readline()
            body = b"".join(parts)
        else:
            body = await reader.readexactly(length)
        self.pool.put_nowait(conn)
        return RawResponse(status, body)

    def json(self, r: RawResponse) -> Any:
        return orjson.loads(r.content)

    async def aclose(self) -> None:
        while not self.pool.empty():
            _, writer = self.pool.get_nowait()
            writer.close()


SERVER_SETTINGS = {"address_read_rate": 0, "address_rate": 0, "author_rate": 0}
"""All requests come from 127.0.0.1: no per-address budget (``forum bench abuse`` measures those)."""


def start_server(data_dir: Path, database_url: str | None) -> ForumProcess:
    """``python -m forum`` on the benchmark database (waits as long as the replay takes)."""
    t0 = time.perf_counter()
    server = ForumProcess(data_dir, database_url=database_url, cwd=ROOT, settings=SERVER_SETTINGS).start(None)
    print(f"server up at {server.url} after {time.perf_counter() - t0:.0f} s (includes the scores engine's replay of the log)")
    return server


async def latency_server(data_dir: Path, database_url: str | None, plan: Plan, requests: int, levels: list[int]) -> list[Figures]:
    server = start_server(data_dir, database_url if database_url and database_url.startswith("postgresql") else None)
    try:
        client = RawClient(server.url, max(levels))
        try:
            t0 = time.perf_counter()
            head = client.json(await client.get("/healthz"))["head_seq"]
            while True:
                doc = client.json(await client.get("/api/v1/scores", {"limit": 1}))
                if doc["as_of_seq"] >= head and doc["fit_as_of_seq"] >= head - 1000:
                    break
                await asyncio.sleep(1)
            print(f"scores engine fitted after {time.perf_counter() - t0:.0f} more s (as of {doc['fit_as_of_seq']:,})")
            print(f"restored state files checked against a replay after {await restored_states_checked(server.url):.0f} more s")
            # Let the engine's loops settle (the fit loop wakes once more), then warm every page up.
            await asyncio.sleep(15)
            for _ in range(10):
                for _name, path, _weight in page_paths(plan):
                    assert (await client.get(path)).status_code == 200
            print(f"\nload average {os.getloadavg()[0]:.1f} before measuring\n\n{HEADER}")
            db_pid = await postmaster_pid(database_url) if database_url and database_url.startswith("postgresql") else None
            figures = await _measure_pages(client, plan, requests, levels, server.pid, db_pid)
            print(f"\nload average {os.getloadavg()[0]:.1f} after measuring")
            return figures
        finally:
            await client.aclose()
    finally:
        server.stop()


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    ap.add_argument("--postgres", action="store_true", help="use a throwaway PostgreSQL server (clients/launch.py)")
    ap.add_argument(
        "--postgres-url",
        default=None,
        help="use this PostgreSQL database instead (postgresql://...): loaded once, measured again by later runs "
        "with the same --data-dir (which keeps the plan)",
    )
    ap.add_argument("--data-dir", type=Path, default=None, help="where the SQLite database lives (default: a temp dir per size)")
    ap.add_argument("--fresh", action="store_true", help="delete and reload the database")
    ap.add_argument("--requests", type=int, default=1000, help="requests per main page (others get a quarter)")
    ap.add_argument("--concurrency", default="1,8", help="concurrent requests: levels, comma-separated (default 1,8)")
    ap.add_argument("--skip", action="append", default=[], choices=["explain", "inprocess", "server"], help="skip a phase")
    args = ap.parse_args()
    levels = sorted({int(x) for x in str(args.concurrency).split(",") if x.strip()})

    postgres = args.postgres or args.postgres_url is not None
    data_dir: Path = args.data_dir or Path(tempfile.gettempdir()) / f"mycelium-bench-pages-{args.events}{'-pg' if postgres else ''}"
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    pg = None
    if args.postgres_url:
        pg = PostgresServer(external_url=args.postgres_url).start()
        url = pg.url
    elif args.postgres:
        pg = PostgresServer().start()
        url = pg.create_database("bench_pages")
    else:
        url = f"sqlite+aiosqlite:///{(data_dir / 'forum.db').resolve()}"
    print(f"# bench_pages: {args.events:,} events, {'PostgreSQL' if postgres else 'SQLite'}, concurrency {levels}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; data in {data_dir}")
    try:
        plan = asyncio.run(load(url, args.events, data_dir / "plan.json"))
        print("log:", ", ".join(f"{k} {v:,}" for k, v in sorted(plan.counts.items())))
        if "explain" not in args.skip:
            print("\n## Query plans (every statement of every page)")
            bad = asyncio.run(explain_pages(url, plan, data_dir))
            print("\nstatements without an index:", bad or "none")
        results: dict[str, list[Figures]] = {}
        if "inprocess" not in args.skip:
            print(f"\n## Latency in process, no HTTP (the whole app, scores engine on)\n\n{HEADER}")
            results["inprocess"] = asyncio.run(latency_inprocess(url, plan, data_dir, args.requests, levels))
        if "server" not in args.skip:
            print("\n## Latency over HTTP, real server (uvicorn, scores engine on)")
            results["server"] = asyncio.run(latency_server(data_dir, url, plan, args.requests, levels))
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
