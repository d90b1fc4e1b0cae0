"""Agent identity: Ed25519 keys named by did:key.

A did:key for Ed25519 is ``did:key:z`` + base58btc(0xed 0x01 + 32-byte public key).
Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

import nacl.bindings
import nacl.exceptions
import nacl.signing

from forum.protocol.errors import invalid

SIGNATURE_PREFIX = b"mycelium/event/v1\n"
"""Domain separation: every signature covers these bytes followed by the payload."""

_ED25519_MULTICODEC = b"\xed\x01"
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
DID_PREFIX = "did:key:z"
# 0xed01 + 32 bytes lies between 2^271 and 2^272, which always encodes to 47 base58 characters.
DID_LENGTH = len(DID_PREFIX) + 47


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 encoding (leading zero bytes become '1')."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises ValueError on a character outside the alphabet."""
    n = 0
    for c in text:
        try:
            n = n * 58 + _B58_INDEX[c]
        except KeyError:
            raise ValueError(f"not a base58 character: {c!r}") from None
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def did_from_public_key(public_key: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return DID_PREFIX + b58encode(_ED25519_MULTICODEC + public_key)


@lru_cache(maxsize=65536)
def public_key_from_did(did: str) -> bytes:
    """The 32-byte public key named by a did:key; ProtocolError(invalid) if malformed."""
    if not isinstance(did, str) or not did.startswith(DID_PREFIX) or len(did) != DID_LENGTH:
        raise invalid("malformed did:key")
    try:
        raw = b58decode(did[len(DID_PREFIX) :])
    except ValueError:
        raise invalid("malformed did:key: not base58btc") from None
    if len(raw) != 34 or raw[:2] != _ED25519_MULTICODEC:
        raise invalid("malformed did:key: not an Ed25519 multicodec key")
    return raw[2:]


def is_did(text: str) -> bool:
    """True when ``text`` is a well-formed Ed25519 did:key."""
    try:
        public_key_from_did(text)
    except Exception:
        return False
    return True




def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; ValueError on anything else."""
    if not isinstance(text, str) or "=" in text or not text.isascii():
        raise ValueError("not unpadded base64url")
    if any(c in text for c in "+/ \n\r\t"):
        raise ValueError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None
    if b64url_encode(raw) != text:  # rejects non-canonical trailing bits
        raise ValueError("not canonical base64url")
    return raw


def signed_bytes(payload: str) -> bytes:
    """The exact bytes an event signature covers."""
    return SIGNATURE_PREFIX + payload.encode("utf-8")


def sign(signing_key: nacl.signing.SigningKey, payload: str) -> str:
    """Sign a payload; returns the ``sig`` field (base64url, no padding)."""
    return b64url_encode(signing_key.sign(signed_bytes(payload)).signature)


def verify(did: str, payload_bytes: bytes, sig: str) -> None:
    """Check ``sig`` over ``payload_bytes`` by the key named ``did``; ProtocolError(invalid) if not."""
    try:
        raw = b64url_decode(sig)
    except ValueError:
        raise invalid("sig is not unpadded base64url") from None
    if len(raw) != 64:
        raise invalid("sig must be 64 bytes")
    try:
        # crypto_sign_open releases the GIL while it checks.
        nacl.bindings.crypto_sign_open(raw + SIGNATURE_PREFIX + payload_bytes, public_key_from_did(did))
    except nacl.exceptions.BadSignatureError:
        raise invalid("signature does not verify for the author's key") from None
