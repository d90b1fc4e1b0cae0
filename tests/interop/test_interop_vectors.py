"""The test vectors, reproduced byte for byte by the independent client."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nacl.signing
import pytest

from tests.interop import minimal_client as mc

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "protocol-vectors.json").read_text("utf-8"))["vectors"]


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"][:8] for v in VECTORS])
def test_vector_reproduced_byte_for_byte(vec: dict[str, str]) -> None:
    agent = mc.Agent(bytes.fromhex(vec["seed_hex"]))
    assert agent.public_key.hex() == vec["public_key_hex"]
    assert agent.did == vec["did"]
    assert len(agent.did) == len("did:key:z") + 47 and agent.did.startswith("did:key:z6Mk")
    assert mc.public_key_from_did(agent.did) == agent.public_key

    # Re-encode the payload from its parsed value: compact JSON, keys in the order given.
    obj = json.loads(vec["payload"])
    assert list(obj) == ["v", "kind", "author", "created_at", "body"]
    payload = agent.payload(obj["kind"], obj["body"], created_at=obj["created_at"])
    assert payload == vec["payload"]
    assert payload.encode("utf-8") == vec["payload"].encode("utf-8")

    assert vec["signed_bytes_prefix"].encode("utf-8") == mc.SIGNATURE_PREFIX
    assert agent.sign(payload) == vec["sig"]
    assert len(vec["sig"]) == 86 and "=" not in vec["sig"]
    assert mc.event_id(payload) == vec["id"]

    # Anyone can check it from the did alone.
    verify_key = nacl.signing.VerifyKey(mc.public_key_from_did(vec["did"]))
    signature = mc.base64.urlsafe_b64decode(vec["sig"] + "==")
    verify_key.verify(mc.SIGNATURE_PREFIX + payload.encode("utf-8"), signature)


def test_base58_round_trip_and_leading_zeros() -> None:
    for data in (b"", b"\x00", b"\x00\x00\x01", bytes(range(40)), b"\xed\x01" + b"\xff" * 32):
        assert mc.b58decode(mc.b58encode(data)) == data
    assert mc.b58encode(b"\x00\x00\x01") == "112"
    assert mc.b58encode(b"hello world") == "StV1DL6CwTryKyV"


def test_every_ed25519_did_key_has_47_characters_after_the_prefix() -> None:
    for pk in (b"\x00" * 32, b"\xff" * 32, bytes(range(32))):
        did = mc.did_from_public_key(pk)
        assert len(did) == 56 and did.startswith("did:key:z6Mk")


def test_compact_json_escapes() -> None:
    assert mc.encode_json({"a": ["\"\\\n\t\x01", "é🍄", None, True, 1, -0.5]}) == '{"a":["\\"\\\\\\n\\t\\u0001","é🍄",null,true,1,-0.5]}'


def test_leading_zero_bits() -> None:
    assert mc.leading_zero_bits("f" + "0" * 63) == 0
    assert mc.leading_zero_bits("1" + "0" * 63) == 3
    assert mc.leading_zero_bits("00" + "8" * 62) == 8
    assert mc.leading_zero_bits("0" * 64) == 256


def test_the_derived_rating_example_in_the_protocol_document() -> None:
    """docs/protocol.md section 15.3: vector 1's key rates vector 2's proposal."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")
    section = doc.split("### 15.3", 1)[1].split("###", 1)[0]
    shown = dict(re.findall(r"^(payload|sig|id)\s+(\S+)$", section, re.M))
    agent = mc.Agent(bytes.fromhex(VECTORS[0]["seed_hex"]))
    payload = agent.payload(
        "rating", {"target": VECTORS[1]["id"], "score": 0.8, "criteria": {}}, created_at=1763800002000
    )
    assert shown == {"payload": payload, "sig": agent.sign(payload), "id": mc.event_id(payload)}


def test_the_client_is_independent_of_the_forum_code() -> None:
    """minimal_client.py may use only the standard library, PyNaCl and websockets."""
    import ast
    import sys

    tree = ast.parse(Path(mc.__file__).read_text("utf-8"))
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = set(sys.stdlib_module_names) | {"__future__", "nacl", "websockets"}
    assert roots <= allowed, f"minimal_client imports {sorted(roots - allowed)}"
