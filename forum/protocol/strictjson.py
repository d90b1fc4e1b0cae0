"""Strict JSON parsing for untrusted input.

Rejects what RFC 8259 leaves ambiguous or what other parsers disagree on:
duplicate object keys (at any depth), NaN/Infinity, numbers that overflow to
infinity, integers outside +-2^53, lone surrogates, nesting deeper than
``MAX_DEPTH``. Raises only :class:`forum.protocol.errors.ProtocolError`.
"""

from __future__ import annotations

import json
from typing import Any

from forum.protocol.errors import ProtocolError, invalid

MAX_SAFE_INT = 2**53
MAX_DEPTH = 32


class _Reject(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Reject(f"duplicate key {k[:40]!r}")
        out[k] = v
    return out


def _const(name: str) -> Any:
    raise _Reject(f"{name} is not allowed")


def _int(text: str) -> int:
    if len(text) > 20:
        raise _Reject("integer out of range")
    n = int(text)
    if not -MAX_SAFE_INT <= n <= MAX_SAFE_INT:
        raise _Reject("integer out of range (+-2^53)")
    return n


def _float(text: str) -> float:
    f = float(text)
    if f in (float("inf"), float("-inf")) or f != f:
        raise _Reject("number out of range")
    return f


_decoder = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_const, parse_int=_int, parse_float=_float
)


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Reject("nested too deeply")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Reject("lone surrogate in string") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check(k, depth + 1)
            _check(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check(v, depth + 1)


def loads(data: bytes | str, *, what: str = "JSON") -> Any:
    """Parse ``data`` strictly. ``what`` names the thing in error messages."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError:
        raise invalid(f"{what} is not valid UTF-8") from None
    try:
        value = _decoder.decode(text)
        _check(value, 0)
    except _Reject as e:
        raise invalid(f"{what}: {e}") from None
    except RecursionError:
        raise invalid(f"{what}: nested too deeply") from None
    except ProtocolError:
        raise
    except Exception as e:  # json.JSONDecodeError, ValueError from int(): all mean "not JSON"
        raise invalid(f"{what} is not valid JSON ({type(e).__name__})") from None
    return value
