"""The fan-out subscriber's frame reader (clients/bench/fanreader.py) and the run's delivery check.

Frames are built by the forum's own encoder (forum/corked.py) and fed to the
reader as a socket would hand them over: whole, or cut at every byte. The
check must find a lost, a duplicated and a reordered delivery.
"""

from __future__ import annotations

import asyncio
from multiprocessing.sharedctypes import RawArray

import orjson

from clients.bench.fanout import _check
from clients.bench.fanreader import Sampler, Shared, SubscriberConn, tally
from forum.corked import text_frame

BASE = 40  # the head seq before the run
N = 12  # events published


def _frame(obj: object) -> bytes:
    data = orjson.dumps(obj)
    return text_frame(data) + data


def _event(sub_id: str, i: int, text_bytes: int = 20) -> bytes:
    env = {"payload": orjson.dumps({"n": i, "text": "x" * text_bytes}).decode(), "sig": f"sig{i:04d}"}
    return _frame(["EVENT", sub_id, BASE + 1 + i, env])


def _run(streams: dict[str, list[bytes]], *, cut: int | None = None, every: int = 1) -> tuple[list[SubscriberConn], Shared]:
    async def main() -> tuple[list[SubscriberConn], Shared]:
        t_send = RawArray("d", N)
        index = {f"sig{i:04d}".encode(): i for i in range(N)}
        shared = Shared(index, t_send, N, Sampler(2 * N + 10, every), None)
        subs = [SubscriberConn(sid, BASE, shared, witness=k == 0) for k, sid in enumerate(streams)]
        for sub, (sid, frames) in zip(subs, streams.items(), strict=True):
            data = _frame(["LIVE", sid, BASE]) + b"".join(frames)
            step = cut or len(data)
            for pos in range(0, len(data), step):
                sub.data_received(data[pos : pos + step])
        return subs, shared

    return asyncio.run(main())


def _checked(streams: dict[str, list[bytes]], **kw: int) -> dict[str, object]:
    subs, shared = _run(streams, **kw)
    return _check([tally(subs, shared)], list(range(N)), N, BASE, len(subs))


def test_every_event_once_in_order_passes_whole_or_cut_at_every_byte() -> None:
    streams = {f"s{k}": [_event(f"s{k}", i, 200 if i % 3 else 70_000) for i in range(N)] for k in range(3)}
    for cut in (None, 1, 7):
        chk = _checked(streams, cut=cut)
        assert chk["ok"], (cut, chk)
        assert chk["delivered"] == chk["expected_deliveries"] == 3 * N
        assert chk["distinct_seqs"] == N


def test_a_lost_a_duplicated_and_a_reordered_delivery_fail_the_check() -> None:
    good = [_event("a", i) for i in range(N)]
    lost = [_event("b", i) for i in range(N) if i != 5]
    dup = [_event("c", i) for i in range(N)]
    dup.insert(3, _event("c", 2))
    swapped = [_event("d", i) for i in range(N)]
    swapped[7], swapped[8] = swapped[8], swapped[7]
    chk = _checked({"a": good, "b": lost, "c": dup, "d": swapped})
    assert not chk["ok"]
    assert chk["missing"] == 2  # b's event 5, and d's event 7 (its late copy came after 8: out of order)
    assert chk["out_of_order"] == 2  # c's second copy of event 2, d's event 7
    assert chk["extra"] == 0 and chk["witness_missing"] == 0


def test_a_frame_of_another_subscription_or_event_is_unknown() -> None:
    stray = _frame(["EVENT", "zz", BASE + 3, {"payload": "{}", "sig": "nope"}])
    chk = _checked({"a": [_event("a", i) for i in range(N)], "b": [*(_event("b", i) for i in range(N)), stray]})
    assert not chk["ok"] and chk["unknown_frames"] == 1


def test_the_sample_is_a_fixed_subset_timed_by_every_subscriber() -> None:
    _, shared = _run({f"s{k}": [_event(f"s{k}", i) for i in range(N)] for k in range(4)}, every=3)
    sampled = sum(shared.sampler.mask[:N])
    assert 0 < sampled < N
    assert shared.hist.count == 4 * sampled
    assert Sampler(2 * N + 10, 3).mask == shared.sampler.mask  # the same seqs in every process and run
