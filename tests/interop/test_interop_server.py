"""The independent client against a real forum process: publish, refusals, subscribe, resume."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.interop import minimal_client as mc
from tests.interop.server import Server, start_server, stop_server
from tests.support.timeouts import timeout

pytestmark = pytest.mark.slow

VECTORS_FILE = Path(__file__).resolve().parents[1] / "data" / "protocol-vectors.json"


def fresh_agent() -> mc.Agent:
    return mc.Agent(os.urandom(32))


def agent_body(name: str) -> dict[str, Any]:
    return {"name": name, "about": "Written from docs/protocol.md alone."}


def proposal_body(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "summary": "A test proposal.", "text": "Some *Markdown*.", "tags": ["interop"], **extra}


def rating_body(target: str, score: float) -> dict[str, Any]:
    return {"target": target, "score": score, "criteria": {}}


async def publish_ok(s: mc.Session, env: dict[str, str]) -> mc.Ok:
    async with asyncio.timeout(timeout(10)):
        ok = await s.publish(env)
    assert ok.accepted, ok
    assert ok.message == ""
    assert ok.id == mc.envelope_id(env)
    return ok


async def refused(s: mc.Session, env: Any, reason: str, *, expect_id: str | None = None) -> mc.Ok:
    async with asyncio.timeout(timeout(10)):
        ok = await s.publish(env, expect_id=expect_id)
    assert not ok.accepted, ok
    assert ok.message.startswith(reason + ": "), ok
    return ok


async def test_publish_profile_and_proposal_then_duplicate(server: Server) -> None:
    a = fresh_agent()
    async with await mc.Session.open(server.ws_url) as s:
        profile = a.envelope("agent", agent_body("Interop agent"))
        proposal = a.envelope("proposal", proposal_body("Interop proposal"))
        await publish_ok(s, profile)
        await publish_ok(s, proposal)

        async with asyncio.timeout(timeout(10)):
            dup = await s.publish(proposal)
        assert dup.accepted and dup.id == mc.envelope_id(proposal)
        assert dup.message.startswith("duplicate:")

    # The log holds each exactly once, byte for byte.
    page = await asyncio.to_thread(server.get_json, f"/api/v1/events?authors={a.did}&after_seq=0")
    assert [e["id"] for e in page["events"]] == [mc.envelope_id(profile), mc.envelope_id(proposal)]
    assert [e["payload"] for e in page["events"]] == [profile["payload"], proposal["payload"]]
    assert [e["sig"] for e in page["events"]] == [profile["sig"], proposal["sig"]]
    assert page["events"][0]["seq"] < page["events"][1]["seq"]
    assert page["head"] >= page["events"][1]["seq"]

    # HTTP publish: 201 with the seq when stored, 200 when already there.
    env = a.envelope("proposal", proposal_body("Over HTTP"))
    for status, message in ((201, ""), (200, "duplicate:")):
        req = urllib.request.Request(server.url + "/api/v1/events", data=mc.encode_json(env).encode(), method="POST")
        with await asyncio.to_thread(urllib.request.urlopen, req, timeout=timeout(10)) as resp:
            assert resp.status == status
            result = json.loads(resp.read())
        assert result["ok"] is True and result["accepted"] is True and result["id"] == mc.envelope_id(env)
        assert result["message"].startswith(message) and bool(message) == (result["seq"] is None)
    stored = await asyncio.to_thread(server.get_json, f"/api/v1/events/{mc.envelope_id(env)}")
    assert stored["payload"] == env["payload"] and stored["retracted"] is False

    # Retraction: the target stays in the log, flagged; a retraction cannot itself be retracted.
    async with await mc.Session.open(server.ws_url) as s:
        retraction = a.envelope("retraction", {"target": mc.envelope_id(env), "reason": "Superseded."})
        await publish_ok(s, retraction)
        await refused(s, a.envelope("retraction", {"target": mc.envelope_id(retraction)}), "invalid")
    stored = await asyncio.to_thread(server.get_json, f"/api/v1/events/{mc.envelope_id(env)}")
    assert stored["payload"] == env["payload"] and stored["retracted"] is True


async def test_refusals_carry_the_right_reason(server: Server) -> None:
    a, b = fresh_agent(), fresh_agent()
    limits = (await asyncio.to_thread(server.get_json, "/.well-known/mycelium.json"))["limits"]
    async with await mc.Session.open(server.ws_url) as s:
        # A signature that is well-formed but made over other bytes.
        p = a.payload("agent", agent_body("Forged"))
        other = a.payload("agent", agent_body("Something else"))
        await refused(s, {"payload": p, "sig": a.sign(other)}, "invalid")
        # Signed by one key, claiming another author.
        p = a.payload("agent", agent_body("Impostor"))
        await refused(s, {"payload": p, "sig": b.sign(p)}, "invalid")
        # An unknown kind, correctly signed.
        await refused(s, a.envelope("poll", {"question": "?"}), "invalid")
        # A payload over the limit (checked before anything else).
        big = a.envelope("proposal", proposal_body("Big", text="x" * (limits["max_payload_bytes"] + 1)))
        await refused(s, big, "too-large")
        # created_at too far in the future.
        future = mc.now_ms() + limits["max_future_ms"] + 3_600_000
        await refused(s, a.envelope("agent", agent_body("Late"), created_at=future), "invalid")
        # A body field out of bounds.
        await refused(s, a.envelope("rating", rating_body("0" * 64, 1.5)), "invalid")

        # Context rules.
        proposal = a.envelope("proposal", proposal_body("Mine"))
        await publish_ok(s, proposal)
        pid = mc.envelope_id(proposal)
        await refused(s, a.envelope("rating", rating_body(pid, 1.0)), "invalid")  # own event
        await refused(s, a.envelope("rating", rating_body(a.did, 1.0)), "invalid")  # yourself
        await refused(s, a.envelope("rating", rating_body("ab" * 32, 1.0)), "invalid")  # unknown target
        await refused(s, a.envelope("rating", rating_body(fresh_agent().did, 1.0)), "invalid")  # ghost did:key
        await refused(s, b.envelope("retraction", {"target": pid}), "invalid")  # not the author
        outcome: dict[str, Any] = {
            "proposal": pid, "status": "planned", "verdict": None, "period": {"start": "2026-01-01"},
            "metrics": [], "summary": "", "evidence": [],
        }
        await refused(s, b.envelope("outcome", outcome), "invalid")  # no community profile
        rating = b.envelope("rating", rating_body(pid, 0.5))
        await publish_ok(s, rating)
        await publish_ok(s, a.envelope("rating", rating_body(b.did, 0.5)))  # b has published now: real
        await refused(s, a.envelope("rating", rating_body(mc.envelope_id(rating), 1.0)), "invalid")  # a rating
        await publish_ok(s, b.envelope("community", {"name": "Test community", "about": ""}))
        await publish_ok(s, b.envelope("outcome", outcome))

        # No payload string to hash: the OK carries the empty id.
        await refused(s, 42, "invalid", expect_id="")
        await refused(s, {"payload": 1, "sig": ""}, "invalid", expect_id="")
        # A frame that is not a message at all: NOTICE, and the connection keeps working.
        await s.send_raw("not json")
        async with asyncio.timeout(timeout(10)):
            assert (await s.notices.get()).startswith("invalid: ")
        await s.send_raw('["PUBLISH",{"payload":"{}","sig":"","payload":"{}"}]')  # duplicate key
        async with asyncio.timeout(timeout(10)):
            assert (await s.notices.get()).startswith("invalid: ")
        await publish_ok(s, a.envelope("agent", agent_body("Still connected")))

    # The same refusals over HTTP, in the one error shape.
    p = a.payload("agent", agent_body("Forged over HTTP"))
    req = urllib.request.Request(
        server.url + "/api/v1/events", data=mc.encode_json({"payload": p, "sig": b.sign(p)}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        await asyncio.to_thread(urllib.request.urlopen, req, timeout=timeout(10))
    with info.value as resp:
        err = json.loads(resp.read())
        assert resp.status == 400
    assert err["ok"] is False and err["status"] == 400 and err["reason"] == "invalid"
    assert err["message"].startswith("invalid: ")


async def test_subscribe_stored_then_live_then_resume_without_gaps(server: Server) -> None:
    a, b = fresh_agent(), fresh_agent()
    published: list[dict[str, str]] = []
    async with await mc.Session.open(server.ws_url) as pub:

        async def publish(env: dict[str, str]) -> None:
            await publish_ok(pub, env)
            published.append(env)

        await publish(a.envelope("agent", agent_body("Subscriber test")))
        await publish(a.envelope("proposal", proposal_body("First")))
        await publish(a.envelope("criterion", {"title": "Cost", "description": "", "policies": []}))
        await publish_ok(pub, b.envelope("agent", agent_body("Not matched")))  # another author

        seen: list[tuple[int, dict[str, str]]] = []
        async with await mc.Session.open(server.ws_url) as sub:
            await sub.subscribe("mine", {"authors": [a.did], "after_seq": 0})
            async with asyncio.timeout(timeout(10)):
                stored, live_seq = await sub.until_live("mine")
            assert [env for _, env in stored] == published  # byte for byte, in log order
            seqs = [q for q, _ in stored]
            assert seqs == sorted(set(seqs))
            assert live_seq >= seqs[-1]
            seen += stored

            # Newest-limit form (no after_seq) on the same connection.
            await sub.subscribe("newest", {"authors": [a.did], "limit": 2})
            async with asyncio.timeout(timeout(10)):
                newest, _ = await sub.until_live("newest")
            assert [env for _, env in newest] == published[-2:]

            # A live event reaches both subscriptions, after LIVE.
            await publish(a.envelope("proposal", proposal_body("Live one")))
            async with asyncio.timeout(timeout(10)):
                frame = await sub.next_frame("mine")
                other = await sub.next_frame("newest")
            assert frame[0] == "EVENT" and frame[1] == "mine" and frame[3] == published[-1]
            assert frame[2] > live_seq
            assert other[:3] == ["EVENT", "newest", frame[2]]
            seen.append((frame[2], frame[3]))

            await sub.unsubscribe("newest")
            async with asyncio.timeout(timeout(10)):
                assert await sub.next_frame("newest") == ["CLOSED", "newest", ""]
        last_seq = seen[-1][0]

        # Disconnected: the author keeps publishing.
        missed = []
        for i in range(3):
            env = a.envelope("proposal", proposal_body(f"Missed {i}"))
            await publish(env)
            missed.append(env)
        await publish_ok(pub, b.envelope("proposal", proposal_body("Not matched either")))

        async with await mc.Session.open(server.ws_url) as sub:
            await sub.subscribe("again", {"authors": [a.did], "after_seq": last_seq})
            async with asyncio.timeout(timeout(10)):
                resumed, live_again = await sub.until_live("again")
            assert [env for _, env in resumed] == missed  # exactly the missed ones, no gap, no duplicate
            assert all(q > last_seq for q, _ in resumed)
            assert live_again >= resumed[-1][0]
            seen += resumed

            await publish(a.envelope("proposal", proposal_body("After resuming")))
            async with asyncio.timeout(timeout(10)):
                frame = await sub.next_frame("again")
            assert frame[0] == "EVENT" and frame[3] == published[-1] and frame[2] > live_again
            seen.append((frame[2], frame[3]))

    assert [env for _, env in seen] == published
    assert [q for q, _ in seen] == sorted({q for q, _ in seen})

    # HTTP agrees with what the subscriptions delivered, and so does the export.
    page = await asyncio.to_thread(server.get_json, f"/api/v1/events?authors={a.did}&after_seq=0")
    assert [(e["seq"], {"payload": e["payload"], "sig": e["sig"]}) for e in page["events"]] == seen
    lines = (await asyncio.to_thread(server.get_text, f"/api/v1/export?after_seq={seen[0][0] - 1}")).splitlines()
    exported = {(r["seq"], r["id"]) for r in map(json.loads, lines)}
    assert {(q, mc.envelope_id(env)) for q, env in seen} <= exported


async def test_pow_rate_limits_and_subscription_limit(tmp_path: Any) -> None:
    srv = start_server(
        tmp_path / "strict", min_pow_bits=8, author_burst=3, author_rate=0.01, max_subscriptions_per_connection=2
    )
    try:
        limits = (await asyncio.to_thread(srv.get_json, "/.well-known/mycelium.json"))["limits"]
        assert limits["min_pow_bits"] == 8
        a = fresh_agent()
        async with await mc.Session.open(srv.ws_url) as s:
            # Below the difficulty: find a nonce whose id has fewer than 8 leading zero bits.
            created = mc.now_ms()
            weak = next(
                env for n in range(100)
                if mc.leading_zero_bits(mc.envelope_id(env := a.envelope("agent", agent_body("Weak"), created, str(n)))) < 8
            )
            await refused(s, weak, "pow")
            # Mined: accepted (the nonce is part of the payload).
            mined = a.mine("agent", agent_body("Mined"), 8)
            assert mc.leading_zero_bits(mc.envelope_id(mined)) >= 8
            await publish_ok(s, mined)
            # The author's bucket holds 3 events (the refused one above did not count).
            await publish_ok(s, a.mine("proposal", proposal_body("Two"), 8))
            await publish_ok(s, a.mine("proposal", proposal_body("Three"), 8))
            await refused(s, a.mine("proposal", proposal_body("Four"), 8), "rate-limited")

            # At most 2 subscriptions on one connection.
            for sub_id in ("one", "two"):
                await s.subscribe(sub_id, {"kinds": ["agent"]})
                async with asyncio.timeout(timeout(10)):
                    await s.until_live(sub_id)
            await s.subscribe("three", {"kinds": ["agent"]})
            async with asyncio.timeout(timeout(10)):
                frame = await s.next_frame("three")
            assert frame[0] == "CLOSED" and frame[1] == "three" and frame[2].startswith("blocked: ")

        # Over HTTP the author is still over its limit: 429 with Retry-After.
        env = a.mine("proposal", proposal_body("Five"), 8)
        req = urllib.request.Request(srv.url + "/api/v1/events", data=mc.encode_json(env).encode(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            await asyncio.to_thread(urllib.request.urlopen, req, timeout=timeout(10))
        with info.value as resp:
            err = json.loads(resp.read())
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
        assert err == {"ok": False, "status": 429, "reason": "rate-limited", "message": err["message"]}
        assert err["message"].startswith("rate-limited: ")
    finally:
        stop_server(srv)


async def test_the_test_vectors_are_accepted_by_the_forum(server: Server) -> None:
    """protocol.md section 15.4: the vectors publish as they are; a second time they are duplicates."""
    vectors = json.loads(VECTORS_FILE.read_text("utf-8"))
    envs = [{"payload": v["payload"], "sig": v["sig"]} for v in vectors["vectors"]]
    one, two = (mc.Agent(bytes.fromhex(v["seed_hex"])) for v in vectors["vectors"][:2])
    target = vectors["vectors"][1]["id"]
    envs.append(one.envelope("rating", {"target": target, "score": 0.8, "criteria": {}}, created_at=1763800002000))
    # envs: vector 1, 2, 4 (the reply to vector 2), then the derived rating (vector 3)
    async with await mc.Session.open(server.ws_url) as s:
        for env in envs:
            async with asyncio.timeout(timeout(10)):
                ok = await s.publish(env)
            assert ok.accepted and ok.id == mc.envelope_id(env) and ok.message in ("", "duplicate: already in the log")
        for env in envs:
            async with asyncio.timeout(timeout(10)):
                ok = await s.publish(env)
            assert ok.accepted and ok.message == "duplicate: already in the log"
        await refused(s, {"payload": envs[3]["payload"], "sig": envs[0]["sig"]}, "invalid")
        await refused(s, two.envelope("rating", {"target": target, "score": 1, "criteria": {}}), "invalid")


async def test_governance_kinds_from_the_document(server: Server) -> None:
    """Reply, amendment (accepted, forked), community attributes, adoption and an outcome
    citing it, built from docs/protocol.md sections 6.2, 6.4, 6.5, 6.9-6.11 and 7 alone."""
    author, critic, town = fresh_agent(), fresh_agent(), fresh_agent()
    async with await mc.Session.open(server.ws_url) as s:
        p = author.envelope("proposal", proposal_body("Governed"))
        pid = mc.envelope_id(p)
        await publish_ok(s, p)
        arg = critic.envelope("reply", {"target": pid, "stance": "oppose", "text": "Too *strict*.", "quote": "Some"})
        await publish_ok(s, arg)
        await publish_ok(s, author.envelope("reply", {"target": mc.envelope_id(arg), "stance": "question", "text": "Why?"}))
        amend = critic.envelope("amendment", {"proposal": pid, "text": "Looser.", "reason": "Fewer rules."})
        aid = mc.envelope_id(amend)
        await publish_ok(s, amend)
        # Only the proposal's author may accept it, in a revision.
        stolen = critic.envelope("proposal", proposal_body("Mine now", accepts=[aid]))
        await refused(s, stolen, "invalid")
        v2 = author.envelope("proposal", proposal_body("Governed v2", revises=pid, accepts=[aid]))
        await publish_ok(s, v2)
        await publish_ok(s, town.envelope("proposal", proposal_body("A fork", forks=aid)))
        # An adoption needs a community profile first.
        adopt_body = {"proposal": mc.envelope_id(v2), "action": "adopt", "start": "2026-04-01", "params": {"quorum": "10"}}
        await refused(s, town.envelope("adoption", adopt_body), "invalid")
        await publish_ok(s, town.envelope("community", {"name": "Hamlet", "about": "", "type": "village", "size": 300, "region": "FR-BRE", "tags": ["rural"]}))
        await refused(s, town.envelope("community", {"name": "Hamlet", "about": "", "type": "commune"}), "invalid")
        adoption = town.envelope("adoption", adopt_body)
        await publish_ok(s, adoption)
        report = {
            "proposal": mc.envelope_id(v2), "status": "running", "verdict": None, "period": {"start": "2026-04-01"},
            "metrics": [], "summary": "", "evidence": [], "adoption": mc.envelope_id(adoption), "milestone": "started",
        }
        await publish_ok(s, town.envelope("outcome", report))
    doc = await asyncio.to_thread(server.get_json, "/.well-known/mycelium.json")
    assert {"reply", "amendment", "adoption"} <= set(doc["kinds"])
