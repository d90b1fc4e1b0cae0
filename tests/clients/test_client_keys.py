"""Key files: created 0600 and exclusively, refused when others can read them, round-trip."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clients.sdk.errors import InsecureKeyFile, KeyFileError, KeyFileExists
from clients.sdk.keys import Key, derive_key, generate_key, load_key, save_key
from forum.protocol.identity import is_did


def test_save_creates_a_0600_file_and_load_round_trips(tmp_path: Path) -> None:
    key = generate_key()
    path = save_key(key, tmp_path / "agent.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path)
    assert loaded == key  # compares the did
    assert loaded.seed == key.seed
    assert is_did(loaded.did)


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = save_key(generate_key(), tmp_path / "agent.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    first = generate_key()
    save_key(first, path)
    with pytest.raises(KeyFileExists):
        save_key(generate_key(), path)
    assert load_key(path) == first


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_refuses_a_key_file_others_can_access(tmp_path: Path, mode: int) -> None:
    path = save_key(generate_key(), tmp_path / "agent.key")
    path.chmod(mode)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        load_key(path)


def test_accepts_owner_only_read(tmp_path: Path) -> None:
    path = save_key(generate_key(), tmp_path / "agent.key")
    path.chmod(0o400)
    load_key(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b'{"seed": "zz", "did": "x"}',
        b'{"seed": "00"}',
        b"[1, 2]",
        b'{"seed": 5, "did": "x"}',
    ],
)
def test_malformed_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a key file"):
        load_key(path)


def test_a_did_that_does_not_match_the_seed_is_refused(tmp_path: Path) -> None:
    a, b = generate_key(), generate_key()
    path = tmp_path / "mixed.key"
    path.write_text(f'{{"seed": "{a.seed.hex()}", "did": "{b.did}"}}')
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="does not belong"):
        load_key(path)


def test_missing_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key(tmp_path / "absent.key")


def test_derive_key_is_deterministic_and_separates_labels() -> None:
    assert derive_key("secret", "alice") == derive_key("secret", "alice")
    assert derive_key("secret", "alice") != derive_key("secret", "bob")
    assert derive_key("secret", "alice") != derive_key("secret2", "alice")
    # The boundary between secret and label matters.
    assert derive_key("ab", "c") != derive_key("a", "bc")
    with pytest.raises(ValueError):
        derive_key("a\0b", "c")


def test_derive_key_formula_is_stable() -> None:
    # Importers and demos rely on these keys never changing.
    import hashlib

    seed = hashlib.sha256(b"mycelium/derive-key/v1\0demo\0community/1").digest()
    assert derive_key("demo", "community/1") == Key.from_seed(seed)


def test_seed_is_not_in_repr() -> None:
    key = generate_key()
    assert key.seed.hex() not in repr(key)
    assert key.did in repr(key)
