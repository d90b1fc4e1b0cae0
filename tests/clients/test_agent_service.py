"""``forum agent run`` against a real ``forum serve``: rates by the owner's values cards, survives
``kill -9`` without publishing anything twice, and sends the forum nothing private."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clients.cli import app
from clients.sdk import Client as ForumClient
from clients.sdk import builders
from clients.sdk.keys import Key, derive_key, save_key
from tests.clients.conftest import ServeProcess
from tests.clients.mcp_helpers import Relay, assert_no_seed, write_profile
from tests.support.timeouts import timeout

pytestmark = pytest.mark.slow
NOTE = "private-feedback-words-91c2"


async def _ratings_by(url: str, did: str) -> list[dict[str, Any]]:
    async with ForumClient(url) as forum:
        return [
            e.body
            for _, e in await forum.query({"kinds": ["rating"], "authors": [did], "after_seq": 0})
        ]


async def _wait_for(url: str, did: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout(60)
    while time.monotonic() < deadline:
        got = await _ratings_by(url, did)
        if len(got) >= n:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"the agent published {len(got)} ratings, expected {n}")


def _start(profile: Path, key: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    cmd = [
        sys.executable,
        "-m",
        "clients",
        "agent",
        "run",
        "--profile",
        str(profile),
        "--key",
        str(key),
        "--url",
        url,
        "--tick",
        "0.1",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_agent_run_survives_kill_9_without_duplicates_and_keeps_the_owner_private(
    forum_serve: ServeProcess, tmp_path: Path
) -> None:
    others = [derive_key("svc", f"o{i}") for i in range(3)]
    posts = [
        builders.proposal(
            others[i % 3],
            title=f"Plan {i}",
            text=("cheap " if i % 2 else "costly ") + f"plan number {i}",
        )
        for i in range(8)
    ]
    async with ForumClient(forum_serve.url) as forum:
        await forum.publish_many(posts[:6])
    key: Key = derive_key("svc", "me")
    key_path = save_key(key, tmp_path / "me.key")
    profile = write_profile(tmp_path / "owner.toml", unasked=["rate"], confirm=[])
    runner = CliRunner()
    for post, score in zip(posts[:3], (0.8, -0.5, 0.6), strict=True):
        res = runner.invoke(
            app,
            [
                "agent",
                "feedback",
                "--profile",
                str(profile),
                post.id,
                str(score),
                "-c",
                f"affordability={score}",
                "--note",
                NOTE,
            ],
        )
        assert res.exit_code == 0, res.output

    async with Relay(forum_serve.port) as relay:
        url = f"http://127.0.0.1:{relay.port}"
        proc = _start(profile, key_path, url)
        try:
            first = await _wait_for(forum_serve.url, key.did, 6)
            async with ForumClient(forum_serve.url) as forum:
                await forum.publish_many(posts[6:])
            await asyncio.sleep(0.15)
            proc.send_signal(signal.SIGKILL)  # at any point: maybe mid-publish
            await asyncio.to_thread(proc.wait)
            proc = _start(profile, key_path, url)
            after = await _wait_for(forum_serve.url, key.did, 8)
            await asyncio.sleep(1.0)  # time for a duplicate to show up, if there were one
            after = await _ratings_by(forum_serve.url, key.did)
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.to_thread(proc.wait)
    assert {r["target"] for r in first} == {p.id for p in posts[:6]}
    targets = [r["target"] for r in after]
    assert sorted(targets) == sorted(p.id for p in posts), (
        "each proposal rated exactly once across the kill"
    )
    by_target = {r["target"]: r for r in after}
    assert set(by_target[posts[0].id]["criteria"]) == {"affordability", "fairness"}
    left = json.loads((tmp_path / "owner.state" / "outbox.json").read_text())
    sent_ids = {r["target"] for r in after}
    assert all(json.loads(e["payload"])["body"]["target"] in sent_ids for e in left), left
    assert NOTE.encode() not in relay.upstream  # private by construction
    assert_no_seed(key, relay.upstream)
