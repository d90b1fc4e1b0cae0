"""Protocol rules as properties (Hypothesis) and the shared test vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.signing
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forum.protocol import strictjson
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Limits, event_id, leading_zero_bits, verify_envelope
from forum.protocol.identity import (
    b58decode,
    b58encode,
    did_from_public_key,
    public_key_from_did,
    sign,
)
from forum.protocol.wire import parse_message

VECTORS = Path(__file__).parent.parent / "data" / "protocol-vectors.json"
LIMITS = Limits()
NOW = 1_900_000_000_000
KEY = nacl.signing.SigningKey(b"\x07" * 32)
DID = did_from_public_key(KEY.verify_key.encode())


def _vectors() -> list[dict[str, str]]:
    path = VECTORS if VECTORS.exists() else Path(__file__).parents[3] / "shared" / "protocol-vectors.json"
    return json.loads(path.read_text())["vectors"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("v", _vectors(), ids=lambda v: v["id"][:12])
def test_vectors_reproduce_every_field(v: dict[str, str]) -> None:
    key = nacl.signing.SigningKey(bytes.fromhex(v["seed_hex"]))
    assert key.verify_key.encode().hex() == v["public_key_hex"]
    assert did_from_public_key(key.verify_key.encode()) == v["did"]
    assert public_key_from_did(v["did"]).hex() == v["public_key_hex"]
    assert sign(key, v["payload"]) == v["sig"]
    assert event_id(v["payload"]) == v["id"]
    ev = verify_envelope({"payload": v["payload"], "sig": v["sig"]}, limits=LIMITS, now_ms=NOW)
    assert ev.id == v["id"] and ev.author == v["did"] and ev.payload == v["payload"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_strict_parser_only_raises_its_own_error(data: bytes) -> None:
    try:
        strictjson.loads(data)
    except ProtocolError as e:
        assert e.reason == "invalid"


@given(json_values)
def test_strict_parser_round_trips_what_it_accepts(value: Any) -> None:
    text = json.dumps(value)
    try:
        parsed = strictjson.loads(text)
    except ProtocolError:
        return  # NaN, huge ints, lone surrogates... refused, never anything else
    assert json.dumps(parsed) == text


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1, 1.0 and True differ; so do 0.0 and -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


def _agrees_with_reference(data: bytes | str) -> None:
    """strictjson.loads (orjson fast path) answers exactly what the reference parser answers."""
    try:
        ref: Any = strictjson.reference_loads(data)
    except ProtocolError as e:
        with pytest.raises(ProtocolError) as got:
            strictjson.loads(data)
        assert got.value.message == e.message
        return
    assert _same(strictjson.loads(data), ref)


_SCALAR_TEXTS = st.sampled_from(
    [
        "1", "-0", "0.5", "-0.0", "1E2", "1e400", "-1e400", "true", "null", "NaN", "Infinity",
        "9007199254740992", "-9007199254740992", "9007199254740993", "18446744073709551616",
        "-9223372036854775809", "123456789012345678901234567890", "0.12345678901234567", "01", "1.",
        '"a"', '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"\\\\"', '"\\""', '"x\\u0041"', '"\\u0000"', '"tab\there"',
    ]
)
_KEY_TEXTS = st.sampled_from(['"a"', '"b"', '"\\u0061"', '"a\\""', '"\\\\"', '""']) | st.text(max_size=3).map(json.dumps)
json_texts = st.recursive(
    _SCALAR_TEXTS | st.integers().map(str) | st.floats(allow_nan=False, allow_infinity=False).map(repr) | st.text(max_size=6).map(json.dumps),
    lambda children: st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
    | st.lists(st.tuples(_KEY_TEXTS, children), max_size=4).map(lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"),
    max_leaves=12,
)


@settings(max_examples=400)
@given(json_texts | st.builds(lambda v: json.dumps(v), json_values))
def test_fast_parser_agrees_with_the_reference_on_json(text: str) -> None:
    _agrees_with_reference(text)
    _agrees_with_reference(text.encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_fast_parser_agrees_with_the_reference_on_anything(data: bytes | str) -> None:
    _agrees_with_reference(data)


def test_fast_parser_edges() -> None:
    for depth in (31, 32, 33, 34):
        _agrees_with_reference("[" * depth + "1" + "]" * depth)
        _agrees_with_reference('{"a":' * depth + "1" + "}" * depth)
    for text in ('{"a":1,"a":1}', '{"a":1,"\\u0061":1}', '{"a":{"b":1,"b":2}}', '[{"x":"\\""},{"x":1,"x":2}]', "\ufeff{}", '{"a":18446744073709551616}', '{"a\\\\":1,"a\\\\":2}'):
        _agrees_with_reference(text)
    with pytest.raises(ProtocolError, match="duplicate key"):
        strictjson.loads('{"k":"v","k":"v"}')
    # An ordinary payload takes the fast path; a duplicate key never does.
    payload = orjson.dumps({"v": 1, "kind": "agent", "author": DID, "created_at": 1, "body": {"name": "a\nb", "about": "x"}})
    assert strictjson._fast(payload)[0] and not strictjson._fast(b'{"a":1,"a":2}')[0]


@given(st.text(max_size=200), st.text(max_size=200))
def test_anything_not_validly_signed_is_rejected(payload: str, sig: str) -> None:
    with pytest.raises(ProtocolError):
        verify_envelope({"payload": payload, "sig": sig}, limits=LIMITS, now_ms=NOW)


@given(json_values)
def test_arbitrary_envelopes_raise_only_protocol_errors(value: Any) -> None:
    with pytest.raises(ProtocolError):
        verify_envelope(value, limits=LIMITS, now_ms=NOW)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_wire_parser_only_raises_its_own_error(data: bytes) -> None:
    try:
        parse_message(data)
    except ProtocolError:
        pass


names = st.text(min_size=1, max_size=100)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(names, st.text(max_size=2000), st.integers(0, NOW))
def test_sign_verify_round_trip_and_tamper_detection(name: str, about: str, created_at: int) -> None:
    payload = orjson.dumps(
        {"v": 1, "kind": "agent", "author": DID, "created_at": created_at, "body": {"name": name, "about": about}}
    ).decode()
    sig = sign(KEY, payload)
    ev = verify_envelope({"payload": payload, "sig": sig}, limits=LIMITS, now_ms=NOW)
    assert ev.body == {"name": name, "about": about} and ev.id == event_id(payload)
    # Any change to the signed text is caught.
    tampered = payload.replace('"kind":"agent"', '"kind":"agent" ')
    with pytest.raises(ProtocolError):
        verify_envelope({"payload": tampered, "sig": sig}, limits=LIMITS, now_ms=NOW)


@given(st.binary(max_size=40))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_leading_zero_bits() -> None:
    assert leading_zero_bits("f" + "0" * 63) == 0
    assert leading_zero_bits("0" * 63 + "1") == 255
    assert leading_zero_bits("01" + "0" * 62) == 7
