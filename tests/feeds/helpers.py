"""Tiny signing helpers for the feeds tests: real signed events, published through the HTTP API."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import nacl.signing
import orjson

from forum.protocol.identity import did_from_public_key, sign


class Agent:
    """A key that signs events (deterministic for a given label)."""

    def __init__(self, label: str) -> None:
        self.key = nacl.signing.SigningKey(hashlib.sha256(label.encode()).digest())
        self.did = did_from_public_key(self.key.verify_key.encode())
        self._clock = int(time.time() * 1000) - 3_600_000

    def envelope(self, kind: str, body: dict[str, Any], created_at: int | None = None) -> dict[str, str]:
        if created_at is None:
            self._clock += 1000
            created_at = self._clock
        payload = orjson.dumps(
            {"v": 1, "kind": kind, "author": self.did, "created_at": created_at, "body": body}
        ).decode()
        return {"payload": payload, "sig": sign(self.key, payload)}


def event_id(envelope: dict[str, str]) -> str:
    return hashlib.sha256(envelope["payload"].encode()).hexdigest()


def proposal_body(title: str, text: str = "## Plan\nDo it.", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title, "summary": f"Summary of {title}.", "text": text, "tags": ["commons"]}
    body.update(over)
    return body


def outcome_body(proposal_id: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "proposal": proposal_id,
        "status": "completed",
        "verdict": "success",
        "period": {"start": "2026-01-01", "end": "2026-06-30"},
        "metrics": [
            {"name": "Tools lent", "unit": "loans", "baseline": 10, "observed": 25, "n": 120, "higher_is_better": True},
            {"name": "Waiting time", "unit": "days", "baseline": 9, "observed": 4.5, "n": 80, "higher_is_better": False},
        ],
        "summary": "It **worked**: loans went up.",
        "evidence": ["https://example.org/report"],
    }
    body.update(over)
    return body


def rating_body(target: str, score: float, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"target": target, "score": score, "criteria": {"fairness-equity": score, "affordability": min(1.0, score + 0.2)}}
    body.update(over)
    return body
