"""Ed25519 keys for agents and communities, and the files that hold them.

A key file is JSON ``{"seed": "<64 hex chars>", "did": "did:key:z..."}``: the
32-byte Ed25519 seed and, for humans and as a consistency check, the did:key
it yields. It is created with ``O_CREAT | O_EXCL`` and mode ``0600`` (never
overwritten, never readable by anyone else for even a moment), and
:func:`load_key` refuses a file that group or others may access, like
``ssh`` does.

:func:`derive_key` makes reproducible keys from a secret string and a label
(for importers and demos)::

    seed = SHA-256(b"mycelium/derive-key/v1\\0" + utf8(secret) + b"\\0" + utf8(label))
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing
import orjson

from clients.sdk.errors import InsecureKeyFile, KeyFileError, KeyFileExists
from forum.protocol.identity import did_from_public_key, sign

__all__ = ["DERIVE_PREFIX", "Key", "derive_key", "generate_key", "load_key", "save_key"]

DERIVE_PREFIX = b"mycelium/derive-key/v1\0"
"""Domain separation for :func:`derive_key`."""

_MAX_KEY_FILE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Key:
    """An Ed25519 signing key and the did:key that names it.

    The seed is secret: it is excluded from ``repr`` and comparisons.
    """

    seed: bytes = field(repr=False, compare=False)
    did: str
    signing_key: nacl.signing.SigningKey = field(repr=False, compare=False)

    @classmethod
    def from_seed(cls, seed: bytes) -> Key:
        """The key for a 32-byte seed (what PyNaCl's ``SigningKey(seed)`` does)."""
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        signing_key = nacl.signing.SigningKey(seed)
        return cls(
            seed=bytes(seed),
            did=did_from_public_key(bytes(signing_key.verify_key)),
            signing_key=signing_key,
        )

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self.signing_key.verify_key)

    def sign(self, payload: str) -> str:
        """The ``sig`` of a payload: base64url (no padding) over the domain prefix and the payload."""
        return sign(self.signing_key, payload)


def generate_key() -> Key:
    """A fresh random key (from the operating system's CSPRNG)."""
    return Key.from_seed(os.urandom(32))


def derive_key(secret: str, label: str) -> Key:
    """A reproducible key: the same ``secret`` and ``label`` always give the same key.

    Anyone who knows ``secret`` can sign as every key derived from it: use it for
    demos, tests and importers, and keep the secret as secret as a key file.
    """
    if "\0" in secret or "\0" in label:
        raise ValueError("secret and label must not contain NUL characters")
    digest = hashlib.sha256(DERIVE_PREFIX + secret.encode("utf-8") + b"\0" + label.encode("utf-8"))
    return Key.from_seed(digest.digest())


def save_key(key: Key, path: str | os.PathLike[str]) -> Path:
    """Write ``key`` to a new file with mode 0600; raises :class:`KeyFileExists` if ``path`` exists."""
    target = Path(path)
    data = orjson.dumps({"seed": key.seed.hex(), "did": key.did}, option=orjson.OPT_APPEND_NEWLINE)
    try:
        fd = os.open(
            target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
    except FileExistsError:
        raise KeyFileExists(f"{target}: already exists; refusing to overwrite a key") from None
    except OSError as e:
        raise KeyFileError(f"{target}: cannot create key file ({e.strerror})") from None
    try:
        os.fchmod(fd, 0o600)  # in case the umask was unusual; never wider than 0600
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        target.unlink(missing_ok=True)
        raise
    os.close(fd)
    return target


def load_key(path: str | os.PathLike[str]) -> Key:
    """Read a key file written by :func:`save_key`.

    Raises :class:`InsecureKeyFile` when group or others have any permission
    on the file, and :class:`KeyFileError` when it is missing or malformed or
    its did does not match its seed.
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise KeyFileError(f"{target}: no such key file") from None
    except OSError as e:
        raise KeyFileError(f"{target}: cannot open key file ({e.strerror})") from None
    try:
        st = os.fstat(fd)  # the file we opened, not whatever the path names now
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{target}: not a regular file")
        if st.st_mode & 0o077:
            raise InsecureKeyFile(
                f"{target}: permissions {stat.S_IMODE(st.st_mode):04o} let group or others access "
                f"this private key; run: chmod 600 {target}"
            )
        raw = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    return _parse_key_file(target, raw)


def _parse_key_file(target: Path, raw: bytes) -> Key:
    if len(raw) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{target}: too large to be a key file")
    try:
        obj = orjson.loads(raw)
        seed_hex, did = obj["seed"], obj["did"]
        seed = bytes.fromhex(seed_hex)
        if not isinstance(did, str) or len(seed) != 32:
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise KeyFileError(
            f'{target}: not a key file (expected JSON {{"seed": "<64 hex chars>", "did": "did:key:..."}})'
        ) from None
    key = Key.from_seed(seed)
    if key.did != did:
        raise KeyFileError(f"{target}: the did in the file does not belong to its seed")
    return key
