"""BIP-340 Schnorr signatures over secp256k1 in pure Python: an independent check of Nostr events.

``forum bench ingest --versus nostr-relay`` signs its Nostr events with the
relay's own library (coincurve, in the relay's virtualenv, see
:mod:`clients.bench.nostr_relay`); this module, which shares no code with it,
verifies a sample of them before the clock starts, and the tests check it
against BIP-340's published test vectors. It is slow (milliseconds a
signature, Python integers) and not constant-time: for checking, never for
keys that matter.
"""

from __future__ import annotations

import hashlib

P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
"""The field's prime."""
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The group's order."""
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
"""The generator (affine x, y)."""

Point = tuple[int, int] | None  # None is the point at infinity


def _tagged(tag: str, data: bytes) -> bytes:
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


def _add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and a[1] != b[1]:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], P - 2, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], P - 2, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return x, (lam * (a[0] - x) - a[1]) % P


def _mul(p: Point, k: int) -> Point:
    out: Point = None
    while k:
        if k & 1:
            out = _add(out, p)
        p = _add(p, p)
        k >>= 1
    return out


def _lift_x(x: int) -> Point:
    """The point with this x and an even y, or None when there is none."""
    if x >= P:
        return None
    c = (pow(x, 3, P) + 7) % P
    y = pow(c, (P + 1) // 4, P)
    if y * y % P != c:
        return None
    return x, y if y % 2 == 0 else P - y


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _bytes(x: int) -> bytes:
    return x.to_bytes(32, "big")


def public_key(seckey: bytes) -> bytes:
    """The 32-byte x-only public key of a 32-byte secret key."""
    d = _int(seckey)
    if not 1 <= d < N:
        raise ValueError("the secret key must be in 1..n-1")
    pt = _mul(G, d)
    assert pt is not None
    return _bytes(pt[0])


def sign(msg: bytes, seckey: bytes, aux: bytes = bytes(32)) -> bytes:
    """The 64-byte BIP-340 signature of ``msg`` (32 bytes for Nostr: the event id)."""
    d0 = _int(seckey)
    if not 1 <= d0 < N:
        raise ValueError("the secret key must be in 1..n-1")
    pt = _mul(G, d0)
    assert pt is not None
    d = d0 if pt[1] % 2 == 0 else N - d0
    t = _bytes(d ^ _int(_tagged("BIP0340/aux", aux)))
    k0 = _int(_tagged("BIP0340/nonce", t + _bytes(pt[0]) + msg)) % N
    if k0 == 0:
        raise ValueError("nonce is zero (negligible probability)")
    r = _mul(G, k0)
    assert r is not None
    k = k0 if r[1] % 2 == 0 else N - k0
    e = _int(_tagged("BIP0340/challenge", _bytes(r[0]) + _bytes(pt[0]) + msg)) % N
    return _bytes(r[0]) + _bytes((k + e * d) % N)


def verify(msg: bytes, pubkey: bytes, sig: bytes) -> bool:
    """Whether ``sig`` is a valid BIP-340 signature of ``msg`` by the x-only ``pubkey``."""
    if len(pubkey) != 32 or len(sig) != 64:
        return False
    pt = _lift_x(_int(pubkey))
    r, s = _int(sig[:32]), _int(sig[32:])
    if pt is None or r >= P or s >= N:
        return False
    e = _int(_tagged("BIP0340/challenge", sig[:32] + pubkey + msg)) % N
    big_r = _add(_mul(G, s), _mul(pt, N - e))
    return big_r is not None and big_r[1] % 2 == 0 and big_r[0] == r
