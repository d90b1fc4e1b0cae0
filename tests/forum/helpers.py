"""Small helpers for the forum tests: a signer that builds exact envelopes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import nacl.signing
import orjson

from forum.protocol.identity import did_from_public_key, sign


class Signer:
    """An agent key that signs events (deterministic when given a seed label)."""

    def __init__(self, label: str | None = None) -> None:
        seed = hashlib.sha256(label.encode()).digest() if label else None
        self.key = nacl.signing.SigningKey(seed) if seed else nacl.signing.SigningKey.generate()
        self.did = did_from_public_key(self.key.verify_key.encode())

    def payload(self, kind: str, body: dict[str, Any], *, created_at: int | None = None, **extra: Any) -> str:
        obj = {
            "v": 1,
            "kind": kind,
            "author": self.did,
            "created_at": int(time.time() * 1000) if created_at is None else created_at,
            "body": body,
            **extra,
        }
        return orjson.dumps(obj).decode()

    def envelope(self, kind: str, body: dict[str, Any], **kw: Any) -> dict[str, str]:
        p = self.payload(kind, body, **kw)
        return {"payload": p, "sig": sign(self.key, p)}

    def sign_raw(self, payload: str) -> dict[str, str]:
        return {"payload": payload, "sig": sign(self.key, payload)}


def event_id(envelope: dict[str, str]) -> str:
    return hashlib.sha256(envelope["payload"].encode()).hexdigest()


def agent(s: Signer, name: str = "agent") -> dict[str, str]:
    return s.envelope("agent", {"name": name, "about": "a test agent"})


def proposal(s: Signer, title: str = "Tool library", tags: list[str] | None = None) -> dict[str, str]:
    return s.envelope(
        "proposal",
        {"title": title, "summary": "Share tools.", "text": "# Tools\nShare them.", "tags": tags or ["commons"]},
    )


def community(s: Signer, name: str = "Elm Street") -> dict[str, str]:
    return s.envelope("community", {"name": name, "about": "A street", "place": "Testville"})


def outcome(s: Signer, proposal_id: str, **over: Any) -> dict[str, str]:
    body = {
        "proposal": proposal_id,
        "status": "completed",
        "verdict": "success",
        "period": {"start": "2026-01-01", "end": "2026-06-30"},
        "metrics": [{"name": "loans", "unit": "count", "baseline": 10, "observed": 25, "n": 120, "higher_is_better": True}],
        "summary": "It worked.",
        "evidence": ["https://example.org/report"],
    }
    body.update(over)
    return s.envelope("outcome", body)


def rating(s: Signer, target: str, score: float = 0.5, created_at: int | None = None, **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"target": target, "score": score, "criteria": {"fairness": score}}
    body.update(over)
    return s.envelope("rating", body, created_at=created_at)


# --- governance kinds (issue 13)


def reply(s: Signer, target: str, stance: str = "support", text: str = "Because it helps.", **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"target": target, "stance": stance, "text": text}
    body.update(over)
    return s.envelope("reply", body)


def amendment(s: Signer, proposal_id: str, **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"proposal": proposal_id, "text": "# Tools\nShare them on weekends too.", "reason": "More hours."}
    body.update(over)
    return s.envelope("amendment", body)


def adoption(s: Signer, proposal_id: str, action: str = "adopt", **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"proposal": proposal_id, "action": action, "start": "2026-03-01", "params": {"hours": "9-17"}}
    body.update(over)
    return s.envelope("adoption", body)


def revision(s: Signer, revises: str, title: str = "Tool library v2", **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"title": title, "summary": "Share tools.", "text": "# Tools\nv2", "tags": ["commons"], "revises": revises}
    body.update(over)
    return s.envelope("proposal", body)
