"""``forum bench ingest --versus nostr-relay``: the Nostr events, their check, the acknowledgements.

The events and the BIP-340 check are tested offline against BIP-340's
published test vectors and a published Nostr event. The end-to-end run uses
the relay's virtualenv only when a previous bench run left it in the cache
(the suite installs nothing); it is skipped with that reason otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from clients.bench import bip340, nostr_events
from clients.bench.nostr import NostrPublisher
from clients.bench.nostr_relay import Relay, VersusError, cache_dir
from clients.bench.stats import LatencyHist
from tests.support.timeouts import timeout

# BIP-340's test vectors 0-2 (bip-0340/test-vectors.csv): secret key, public key, aux, message, signature.
VECTORS = [
    (
        "0000000000000000000000000000000000000000000000000000000000000003",
        "F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA8215"
        "25F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0",
    ),
    (
        "B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFEF",
        "DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659",
        "0000000000000000000000000000000000000000000000000000000000000001",
        "243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89",
        "6896BD60EEAE296DB48A229FF71DFE071BDE413E6D43F917DC8DCF8C78DE3341"
        "8906D11AC976ABCCB20B091292BFF4EA897EFCB639EA871CFA95F6DE339E4B0A",
    ),
    (
        "C90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B14E5C9",
        "DD308AFEC5777E13121FA72B9CC1B7CC0139715309B086C960E18FD969774EB8",
        "C87AA53824B4D7AE2EB035A2B5BBBCCC080E76CDC6D1692C4B0B62D798E6D906",
        "7E2D58D8B3BCDF1ABADEC7829054F90DDA9805AAB56C77333024B9D0A508B75C",
        "5831AAEED7B44BB74E5EAB94BA9D4294C49BCF2A60728D8B4C200F50DD313C1B"
        "AB745879A5AD954A72C45A91C3A51D3C7ADEA98D82F8481E0E1E03674A6F3FB7",
    ),
]

# A Nostr event published with its id and signature (made by another implementation).
PUBLISHED = {
    "id": "54ffbfbb8a4f76991c9f2401943b9b4d4f10084863ec7ea538bad2ded3d56892",
    "pubkey": "2e7b0e5aae374d0ed1fab6cc877a969716ea48a710176a035398635e5d660dc1",
    "created_at": 0,
    "kind": 96024,
    "tags": [],
    "content": "0" * 64,
    "sig": "a35749d6174451de16fb286096858cb33d7b66c9583024fd2a5cd7b57a763ec8"
    "5d99ddb0711044498c362be7c82e524a9845e09f634bbf11d87fccc2bcfe2202",
}


@pytest.mark.parametrize("vector", VECTORS, ids=["v0", "v1", "v2"])
def test_bip340_matches_the_published_vectors(vector: tuple[str, ...]) -> None:
    sk, pk, aux, msg, sig = (bytes.fromhex(x) for x in vector)
    assert bip340.public_key(sk) == pk
    assert bip340.sign(msg, sk, aux) == sig
    assert bip340.verify(msg, pk, sig)
    assert not bip340.verify(bytes([msg[0] ^ 1]) + msg[1:], pk, sig)
    assert not bip340.verify(msg, pk, sig[:63] + bytes([sig[63] ^ 1]))


def test_a_published_nostr_event_has_its_nip01_id_and_a_valid_signature() -> None:
    e = PUBLISHED
    assert nostr_events.event_id(e["pubkey"], e["created_at"], e["kind"], e["tags"], e["content"]) == e["id"]
    assert bip340.verify(bytes.fromhex(e["id"]), bytes.fromhex(e["pubkey"]), bytes.fromhex(e["sig"]))
    other = nostr_events.event_id(e["pubkey"], e["created_at"], e["kind"], e["tags"], e["content"] + " ")
    assert other != e["id"]


def test_serialization_is_nip01s() -> None:
    raw = nostr_events.serialize("ab" * 32, 1700000000, 1, [["t", "x"]], 'é "q"\n')
    assert raw == ('[0,"' + "ab" * 32 + '",1700000000,1,[["t","x"]],"é \\"q\\"\\n"]').encode()


def _events(count: int, first: int = 0, content_bytes: int = 194) -> list[dict[str, object]]:
    return list(
        nostr_events.build(
            count,
            authors=2,
            secret="test",
            content_bytes=content_bytes,
            created_at=1796215219,
            tag="t",
            sign=lambda m, k: bip340.sign(m, k, hashlib.sha256(m).digest()),
            public_key=bip340.public_key,
            first=first,
        )
    )


def test_built_events_are_signed_distinct_and_of_the_asked_size() -> None:
    a, b = _events(3), _events(3, first=3)
    ids = [e["id"] for e in a + b]
    assert len(set(ids)) == 6  # chunks signed by separate processes never collide
    for e in a + b:
        assert isinstance(e["content"], str) and isinstance(e["pubkey"], str) and isinstance(e["sig"], str)
        assert e["id"] == hashlib.sha256(nostr_events.serialize(e["pubkey"], 1796215219, 1, [], e["content"])).hexdigest()
        assert bip340.verify(bytes.fromhex(str(e["id"])), bytes.fromhex(e["pubkey"]), bytes.fromhex(e["sig"]))
        assert len(nostr_events.encode(e)) == nostr_events.empty_event_bytes(1796215219) + 194
    assert a[0]["pubkey"] != a[1]["pubkey"] and a[0]["pubkey"] == a[2]["pubkey"]


def test_the_publisher_reads_nostr_acknowledgements() -> None:
    """Accepted, duplicate, refused with the event's id, and refused with nostr-relay's empty id."""

    async def run() -> NostrPublisher:
        p = NostrPublisher([b""] * 5, ["a", "b", "c", "d", "e"], 5, LatencyHist(), Counter(), None)
        p.sent_at = {i: 0.0 for i in ["a", "b", "c", "d", "e"]}
        p.next = 5
        p.on_messages(
            [
                b'["OK","a",true,""]',
                b'["OK","b",false,"duplicate: exists"]',
                b'["OK","c",false,"invalid: Bad signature"]',
                b'["NOTICE","storage error"]',
                b'["OK","",false,"invalid: 1 is too old"]',  # nostr-relay's answer to a failed event
                b'["OK","e",true,""]',
            ],
            2.0,
        )
        return p

    p = asyncio.run(run())
    assert (p.accepted, p.duplicates, p.done) == (2, 1, 5)
    assert dict(p.reasons) == {"invalid": 2, "notice: storage error": 1}
    assert p.sent_at == {} and p.finished.done()
    assert p.hist.count == 5 and p.hist.max == 2.0


@pytest.mark.slow
def test_without_a_registry_the_bench_stops_early_with_a_reason(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    env["PIP_FIND_LINKS"] = str(tmp_path)
    cmd = [sys.executable, "-m", "clients", "bench", "ingest", "--start", "sqlite", "--versus", "nostr-relay", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout(180), env=env)
    assert r.returncode == 3, r.stderr
    assert "relay-install-failed" in r.stderr and "nostr-relay" in r.stderr
    assert "starting a forum" not in r.stderr  # nothing was measured
    assert not (tmp_path / "mycelium-bench" / "nostr-relay-1.14").exists()  # nothing half-made is left


def test_a_broken_relay_virtualenv_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "venv").mkdir()
    with pytest.raises(VersusError) as err:
        Relay(tmp_path / "venv", tmp_path).start()
    assert err.value.reason == "relay-did-not-start" and "reinstall" in err.value.detail


@pytest.mark.slow
@pytest.mark.skipif(
    not (cache_dir() / "installed.txt").exists(),
    reason=f"the relay's virtualenv is not cached in {cache_dir()} (run `forum bench ingest --versus nostr-relay` once)",
)
def test_cli_versus_loads_the_relay_and_reports_both_rates(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "clients", "bench", "ingest", "--start", "sqlite", "-n", "300", "--warmup", "0"]
    cmd += ["-c", "4", "-w", "16", "--authors", "10", "--no-baseline", "--versus", "nostr-relay"]
    r = subprocess.run([*cmd, "--json-file", str(report), "-q"], capture_output=True, text=True, timeout=timeout(180))
    assert r.returncode == 0, r.stderr
    res = orjson.loads(report.read_bytes())["results"]
    vs = res["versus"]
    assert "error" not in vs, vs.get("error")
    assert (vs["phase"]["accepted"], vs["phase"]["duplicates"], vs["errors"]) == (300, 0, {})
    assert vs["stored_events"] == 300  # every acknowledged event is in the relay's database
    assert vs["event_bytes"]["nostr_event"] == vs["event_bytes"]["forum_envelope"]
    assert vs["ratio"] == round(res["accepted_per_s"] / vs["accepted_per_s"], 2)
    forum_us = res["cpu_us_per_event"]["server"]
    assert vs["cpu_ratio"] == round(vs["cpu_us_per_event"]["server"] / forum_us, 2)
    assert len(vs["loadavg"]["before_relay"]) == 3 and "rate_limits" not in vs["config"]
    assert vs["installed"]["nostr-relay"] == "1.14"
