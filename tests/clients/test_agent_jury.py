"""Jury duty and flags for the owner's agent, against a real ``forum serve`` (windows scaled
to 0.1): ``forum agent run`` notices its key was drawn, seals the vote its owner's [jury]
values give, survives ``kill -9`` between commit and reveal (the salt is on disk, not on
the wire) and reveals a vote that counts; through ``forum mcp`` and the MCP SDK's client,
``jury_duty`` and ``jury_vote`` do the same without the salt ever reaching the model;
``flag`` publishes only with the owner's yes (elicitation), and a client that cannot ask
leaves a draft that only ``forum agent flag confirm`` publishes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clients import launch
from clients.cli import app
from clients.sdk import Client as ForumClient
from clients.sdk import arbitration as arb
from clients.sdk import builders
from clients.sdk.keys import Key, derive_key, save_key
from tests.clients.mcp_helpers import Relay, assert_no_seed, write_profile
from tests.clients.test_mcp import _error, _structured, accept, decline, stdio_mcp
from tests.support.timeouts import UNIT, timeout

pytestmark = pytest.mark.slow

JURY = """
[jury]
readiness = { livelihood = 0.9, reputation = 0.2 }
default = 0.5
threshold = 0.5
"""


@pytest.fixture
def forum(tmp_path: Path) -> Iterator[launch.ForumProcess]:
    proc = launch.ForumProcess(
        tmp_path / "forum",
        settings={"author_rate": 0, "address_rate": 0, "arbitration_window_scale": 0.1},
        via="serve",
        time_unit=UNIT,
    ).start(timeout(30))
    try:
        yield proc
    finally:
        proc.kill()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=timeout(10)) as r:
        return json.loads(r.read())


async def _publish(url: str, events: list[Any]) -> None:
    async with ForumClient(url) as forum:
        results = await forum.publish_many(events)
    assert all(r.accepted or r.duplicate for r in results), [r.message for r in results]


def _case(url: str, case: str) -> dict[str, Any]:
    return _get(f"{url}/api/v1/cases/{case}")["case"]  # type: ignore[no-any-return]


async def _until(url: str, case: str, test: Any, what: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout(seconds)
    while time.monotonic() < deadline:
        try:
            c = _case(url, case)
            if test(c):
                return c
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {c['status']}")


class World:
    """A flagger, a target, three assessors, one more agent and the juror under test: the
    pool (everyone established but the parties) is exactly the five seats, so the juror
    under test is drawn whatever the seed."""

    def __init__(self, juror: Key, tag: str) -> None:
        self.juror = juror
        self.flagger, self.target = derive_key(tag, "flagger"), derive_key(tag, "target")
        self.others = [derive_key(tag, f"a{i}") for i in range(4)]
        self.case = ""
        self.sealed: dict[str, arb.Sealed] = {}

    async def qualify(self, url: str) -> str:
        everyone = [self.flagger, self.target, *self.others, self.juror]
        setup = [builders.agent(k, name=f"Agent {n}", about=f"v{v}") for v in range(3) for n, k in enumerate(everyone)]
        setup += [builders.agent(self.others[0], name="Agent", about=f"filler {i}") for i in range(12)]
        await _publish(url, setup)
        flag = arb.flag(self.flagger, target=self.target.did, right="livelihood", harm="It undercut my co-op's every bid.")
        self.case = flag.id
        await _publish(url, [flag])
        await _publish(url, [arb.assessment(k, flag=flag.id, layer="rights", reason="a livelihood") for k in self.others[:3]])
        # the seed: the first events of five contributors after the case qualified
        await _publish(url, [builders.agent(k, name="Agent", about="after") for k in [*self.others, self.juror]])
        c = await _until(url, self.case, lambda c: c["status"] == "commit", "the draw")
        assert self.juror.did in {s["juror"] for s in c["rounds"][0]["seats"]}
        return self.case

    async def others_commit(self, url: str) -> None:
        events = []
        for k in self.others:
            s = arb.seal(k, case=self.case, round=0, vote="uphold", reason="clear harm")
            self.sealed[k.did] = s
            events.append(s.commitment)
        await _publish(url, events)

    async def others_reveal(self, url: str) -> None:
        await _publish(url, [arb.reveal(self.others[i], self.sealed[k.did]) for i, k in enumerate(self.others)])


def _profile(tmp_path: Path, **kw: Any) -> Path:
    path = write_profile(tmp_path / "owner.toml", **kw)
    path.write_text(path.read_text() + JURY)
    return path


def _start(profile: Path, key: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    cmd = [sys.executable, "-m", "clients", "agent", "run", "--profile", str(profile), "--key", str(key),
           "--url", url, "--tick", "0.1", "--jury-interval", "0.2"]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=out)


async def test_agent_run_serves_on_a_jury_across_a_kill_and_the_salt_stays_home(
    forum: launch.ForumProcess, tmp_path: Path
) -> None:
    juror = derive_key("jury-run", "me")
    world = World(juror, "jury-run")
    await world.qualify(forum.url)
    key_path = save_key(juror, tmp_path / "me.key")
    profile = _profile(tmp_path, unasked=["rate"], confirm=[])
    log = tmp_path / "agent.log"
    async with Relay(forum.port) as relay:
        url = f"http://127.0.0.1:{relay.port}"
        proc = _start(profile, key_path, url, log)
        try:
            c = await _until(forum.url, world.case, lambda c: any(
                s["juror"] == juror.did and s["status"] == "committed" for s in c["rounds"][0]["seats"]), "the commitment")
            kept = json.loads((tmp_path / "owner.state" / "jury.json").read_text())[f"{world.case}/0"]
            salt = kept["salt"]
            assert kept["vote"] == "uphold" and "0.90" in kept["reason"]  # by the owner's [jury] values
            assert (tmp_path / "owner.state" / "jury.json").stat().st_mode & 0o077 == 0
            assert salt.encode() not in relay.upstream  # sealed: the salt has not left the machine
            proc.send_signal(signal.SIGKILL)  # between commit and reveal
            await asyncio.to_thread(proc.wait)
            await world.others_commit(forum.url)  # the reveal phase opens
            await _until(forum.url, world.case, lambda c: c["status"] == "reveal", "the reveal phase")
            await world.others_reveal(forum.url)
            proc = _start(profile, key_path, url, log)  # restarted: reveals what it sealed before the kill
            c = await _until(forum.url, world.case, lambda c: c["verdict"] is not None, "the verdict")
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.to_thread(proc.wait)
    votes = {v["juror"]: v for v in c["rounds"][0]["votes"]}
    assert votes[juror.did]["vote"] == "uphold" and votes[juror.did]["status"] == "counted"
    assert c["rounds"][0]["not_counted"] == [] and c["verdict"]["verdict"] == "upheld"
    mine = [s for s in c["rounds"][0]["seats"] if s["juror"] == juror.did]
    assert mine[0]["commitment"] == kept["commitment"]  # one commitment, the one sealed before the kill
    assert salt.encode() in relay.upstream  # ... and out in the reveal, once
    assert salt.encode() not in log.read_bytes()  # never in a log line
    notices = json.loads((tmp_path / "owner.state" / "notices.json").read_text())
    assert any("sealed a vote" in n["message"] for n in notices) and any("revealed" in n["message"] for n in notices)
    assert salt not in json.dumps(notices)
    assert_no_seed(juror, relay.upstream, log.read_bytes())


async def test_mcp_jury_tools_and_flags_only_with_the_owners_yes(forum: launch.ForumProcess, tmp_path: Path) -> None:
    juror = derive_key("jury-mcp", "me")
    world = World(juror, "jury-mcp")
    await world.qualify(forum.url)
    key_path = save_key(juror, tmp_path / "me.key")
    profile = _profile(tmp_path, unasked=["rate", "jury_vote"], confirm=["flag"])
    async with stdio_mcp(tmp_path, key_path, forum.url, profile, elicitation_callback=accept) as (client, model_bytes):
        duty = _structured(await client.call_tool("jury_duty", {}))
        (seat,) = duty["seats"]
        assert (seat["case"], seat["due"], duty["serves"]) == (world.case, "commit", True)
        done = _structured(await client.call_tool("jury_vote", {"case": world.case}))
        assert done["step"] == "committed" and "salt" not in done
        again = _structured(await client.call_tool("jury_vote", {"case": world.case}))
        assert again["due"] == "wait" and not again["published"]
        await world.others_commit(forum.url)
        await _until(forum.url, world.case, lambda c: c["status"] == "reveal", "the reveal phase")
        await world.others_reveal(forum.url)
        opened = _structured(await client.call_tool("jury_vote", {"case": world.case}))
        assert opened["step"] == "revealed" and opened["vote"] == "uphold" and "salt" not in opened
        bad = _error(await client.call_tool("jury_vote", {"case": "0" * 64}))
        assert "holds no seat" in bad
        # flag: the owner says yes (elicitation) -> published
        flagged = _structured(await client.call_tool(
            "flag", {"target": world.target.did, "right": "property", "harm": "Took the shared tools."}))
        assert flagged["published"] and flagged["case"] == flagged["id"]
        msg = _error(await client.call_tool("flag", {"target": world.target.did, "right": "other", "harm": "h"}))
        assert "description" in msg  # checked as the forum would, before asking anyone
    salt = json.loads((tmp_path / "owner.state" / "jury.json").read_text())[f"{world.case}/0"]["salt"]
    assert salt.encode() not in model_bytes.read_bytes()  # the model never saw the salt
    c = await _until(forum.url, world.case, lambda c: c["verdict"] is not None, "the verdict")
    assert {v["juror"]: v["status"] for v in c["rounds"][0]["votes"]}[juror.did] == "counted"

    # the owner says no: nothing; a client that cannot ask: refused, kept as a draft
    async with stdio_mcp(tmp_path, key_path, forum.url, profile, elicitation_callback=decline) as (client, _):
        assert "did not approve" in _error(await client.call_tool(
            "flag", {"target": world.target.did, "right": "reputation", "harm": "Declined claim."}))
    async with stdio_mcp(tmp_path, key_path, forum.url, profile) as (client, _):
        msg = _error(await client.call_tool(
            "flag", {"target": world.target.did, "right": "reputation", "harm": "Lied about our co-op."}))
        assert "cannot ask them" in msg and "forum agent flag confirm" in msg
    async with ForumClient(forum.url) as fc:
        flags = [e.body for _, e in await fc.query({"kinds": ["flag"], "authors": [juror.did], "after_seq": 0})]
    assert [f["harm"] for f in flags] == ["Took the shared tools."]  # nothing else without a yes

    runner = CliRunner()
    listed = runner.invoke(app, ["agent", "flags", "--profile", str(profile), "--json"])
    rows = [json.loads(line) for line in listed.output.splitlines() if line.strip()]
    draft = next(r for r in rows if r["status"] == "draft")
    assert draft["draft"]["harm"] == "Lied about our co-op." and {r["status"] for r in rows} == {"draft", "published"}
    res = await asyncio.to_thread(runner.invoke, app, ["agent", "flag", "confirm", "--profile", str(profile), "--key", str(key_path),
                              "--url", forum.url, draft["id"], "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    again = await asyncio.to_thread(runner.invoke, app, ["agent", "flag", "confirm", "--profile", str(profile), "--key", str(key_path),
                                "--url", forum.url, draft["id"]])  # fmt: skip
    assert again.exit_code != 0 and "already published" in again.output
    async with ForumClient(forum.url) as fc:
        flags = [e.body for _, e in await fc.query({"kinds": ["flag"], "authors": [juror.did], "after_seq": 0})]
    assert sorted(f["harm"] for f in flags) == ["Lied about our co-op.", "Took the shared tools."]
    drafted = runner.invoke(app, ["agent", "flag", "draft", "--profile", str(profile), "--target", world.target.did,
                                  "--right", "other", "--harm", "x"])  # fmt: skip
    assert drafted.exit_code != 0 and "description" in drafted.output
