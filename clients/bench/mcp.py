"""Tool call latency of ``forum mcp`` against a forum holding many events (a benchmark, not a test).

    python -m clients.bench.mcp --events 100000 --calls 200 --json-file mcp.json

Starts a forum on a throwaway SQLite folder, fills it with signed events
(proposals, and ratings of them by many keys), then drives the MCP server with
the MCP SDK's own client over stdio (``forum mcp`` in a subprocess, as a
desktop client starts it) and times ``read_feed``, ``get_scores`` and ``rate``
(a signed publish, acknowledged by the forum). Prints a JSON report: p50, p90,
p99 in milliseconds per tool, the fill rate, and the machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from mcp import Client, StdioServerParameters

from clients.launch import ForumProcess
from clients.sdk import Client as ForumClient
from clients.sdk import builders
from clients.sdk.keys import derive_key, save_key


async def fill(url: str, events: int, seed: int) -> tuple[list[str], float]:
    """``events`` signed events: one proposal per 50, the rest ratings of them by 500 keys."""
    rng = random.Random(seed)
    keys = [derive_key("bench-mcp", f"k{i}") for i in range(500)]
    proposals: list[str] = []
    start = time.perf_counter()
    async with ForumClient(url, max_in_flight=2000) as forum:
        batch: list[Any] = []
        for n in range(events):
            if n % 50 == 0 or not proposals:
                ev = builders.proposal(
                    keys[n % 500],
                    title=f"Proposal {n}",
                    text=f"Plan {n}: " + "words " * 20,
                    tags=["bench"],
                )
                proposals.append(ev.id)
            else:
                ev = builders.rating(
                    rng.choice(keys),
                    target=rng.choice(proposals),
                    score=round(rng.uniform(-1, 1), 3),
                )
            batch.append(ev)
            if len(batch) >= 2000:
                await forum.publish_many(batch, check=False)
                batch = []
        if batch:
            await forum.publish_many(batch, check=False)
    return proposals, time.perf_counter() - start


def percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1000.0
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 90, 99)} | {
        "n": len(samples)
    }


async def drive(key_path: Path, url: str, proposals: list[str], calls: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "clients", "mcp", "--key", str(key_path), "--url", url],
        env=env,
    )
    out: dict[str, list[float]] = {"read_feed": [], "get_scores": [], "rate": []}
    rng = random.Random(1)
    async with Client(params, read_timeout_seconds=60) as client:
        await client.call_tool("whoami", {})
        for i in range(calls):
            for name, args in (
                ("read_feed", {"kinds": ["proposal"], "limit": 20}),
                (
                    "get_scores",
                    {"target": rng.choice(proposals)} if i % 2 else {"sort": "count", "limit": 20},
                ),
                (
                    "rate",
                    {
                        "target": proposals[i % len(proposals)],
                        "score": round(rng.uniform(-1, 1), 3),
                    },
                ),
            ):
                t0 = time.perf_counter()
                result = await client.call_tool(name, args)
                out[name].append(time.perf_counter() - t0)
                if result.is_error:
                    raise RuntimeError(f"{name} failed: {result.content}")
    return {name: percentiles(v) for name, v in out.items()}


async def main(events: int, calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"AUTHOR_RATE": 0, "ADDRESS_RATE": 0, "ADDRESS_READ_RATE": 0}
        with ForumProcess(Path(tmp) / "forum", settings=settings) as forum:
            proposals, fill_s = await fill(forum.url, events, 7)
            key_path = save_key(derive_key("bench-mcp", "me"), Path(tmp) / "me.key")
            latency = await drive(key_path, forum.url, proposals, calls)
    return {
        "bench": "mcp",
        "events": events,
        "fill_events_per_s": round(events / fill_s),
        "calls_per_tool": calls,
        "latency_ms": latency,
        "loadavg": os.getloadavg(),
        "transport": "stdio (forum mcp subprocess, MCP SDK client)",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json-file", type=Path)
    a = parser.parse_args()
    report = asyncio.run(main(a.events, a.calls))
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if a.json_file:
        a.json_file.write_text(text + "\n")
