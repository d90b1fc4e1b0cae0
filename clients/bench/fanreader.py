"""The fan-out subscriber's hot path: one ``asyncio.Protocol`` per connection reading frames with bytes operations.

2,000 subscribers at 100 events/s are 200,000 frames a second to read on the
same two cores as the forum, so a subscriber does the least that still
checks every frame:

* WebSocket frames are cut out of each socket read by hand (server frames are
  unmasked, RFC 6455 section 5.2: a 2-, 4- or 10-byte header, then the payload) with
  no per-frame objects;
* an ``EVENT`` frame of this subscription is recognized by its prefix
  ``["EVENT","<sub_id>",`` (``bytes.startswith`` at an offset, no copy), and
  only its seq is parsed (the digits up to the next comma);
* every frame is checked: its seq must be above the previous one (so nothing
  is duplicated or reordered) and within the run's seqs, and it is marked in a
  bitmap of seqs (``seen[seq - base - 1]``); the parent compares each bitmap with
  the seqs the forum gave the accepted events (nothing lost, nothing extra);
* latency is timed for a **sample**: the events whose seq falls in a fixed
  pseudo-random subset (``Sampler``, chosen per seq before the run and the
  same for every subscriber, so it has no relation to timing, to a
  subscriber's place in the forum's delivery order or to batching). Only for
  them the envelope's signature is looked up (which event, hence its send
  time). With 1 in 8 sampled, a 15 s run at 2,000 x 100/s times 375,000
  deliveries; ``--sample 1`` times every one;
* one connection per process, the *witness*, looks up every frame's
  signature: it checks that every accepted event arrived exactly once and
  records the seq the forum gave each event, which the parent compares across
  processes (the same event has the same seq everywhere) and turns into the
  expected bitmap.

Any other frame (LIVE, CLOSED, NOTICE, ping, close) takes the slow path.
The forum never fragments messages; a fragment counts as an unknown frame
(the check fails), as does an EVENT of another subscription or author.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import orjson

from clients.bench.stats import LatencyHist
from clients.bench.wsclient import WsClient, encode_frame

SAMPLE_SEED = 16  # the pseudo-random subset of seqs is the same in every run of the same size


class Sampler:
    """Which seqs (by offset from the run's base seq) are timed: about 1 in ``every``, pseudo-randomly."""

    def __init__(self, slots: int, every: int) -> None:
        rng = random.Random(SAMPLE_SEED)
        self.every = every
        self.mask = bytearray(1 if every <= 1 or rng.random() * every < 1 else 0 for _ in range(slots))


class Shared:
    """What the subscribers of one process share: the signature index, send times, the witness's seqs."""

    def __init__(self, index: dict[bytes, int], t_send: Any, n: int, sampler: Sampler, progress: Any) -> None:
        self.index = index
        self.t_send = t_send
        self.n = n
        self.sampler = sampler
        self.seq_of = [0] * n  # event index -> seq, from the witness
        self.mismatched = 0
        self.hist = LatencyHist()
        self.progress = progress  # a callable taking a count, or None


class SubscriberConn(WsClient):
    """One subscriber on one connection: tallies its EVENT frames as they arrive."""

    def __init__(self, sub_id: str, base_seq: int, shared: Shared, *, witness: bool = False) -> None:
        super().__init__(self._early)
        self.sub_id = sub_id
        self.prefix = b'["EVENT",' + orjson.dumps(sub_id) + b","
        self.base = base_seq
        self.shared = shared
        self.slots = len(shared.sampler.mask)
        self.seen = bytearray(self.slots)  # by seq - base - 1
        self.last = 0  # last seq - base
        self.count = 0
        self.order = 0  # frames whose seq was not above the previous one
        self.unknown = 0  # frames that are not one of the run's events for this subscription
        self.live = False
        self.closed_reason: str | None = None
        self.witness = witness
        self.seen_events = bytearray(shared.n) if witness else None  # by event index
        self.dups = 0  # the witness's duplicates by event
        self._tail = b""

    def data_received(self, data: bytes) -> None:
        if self._handshake is not None:
            super().data_received(data)  # the HTTP answer (any frames after it are parsed there too)
            return
        t = time.monotonic()
        if self._tail:
            data = self._tail + data
            self._tail = b""
        n = len(data)
        pos = 0
        prefix = self.prefix
        plen = len(prefix)
        seen = self.seen
        slots = self.slots
        sample = self.shared.sampler.mask
        base = self.base
        last = self.last
        got = 0
        others: list[tuple[int, bytes]] | None = None
        while n - pos >= 2:
            ln = data[pos + 1]
            if ln < 126:
                start = pos + 2
            elif ln == 126:
                if n - pos < 4:
                    break
                ln = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:  # 127, or the mask bit set (a server must not mask: the slow path fails it)
                if ln != 127 or n - pos < 10:
                    if ln & 0x80:
                        self._fail_masked()
                        return
                    break
                ln = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + ln
            if end > n:
                break
            if data[pos] == 0x81 and data.startswith(prefix, start):
                j = data.index(b",", start + plen)
                k = int(data[start + plen : j]) - base
                if k <= last or k > slots:
                    if k <= last:
                        self.order += 1
                    else:
                        self.unknown += 1
                else:
                    seen[k - 1] = 1
                    last = k
                    got += 1
                    if sample[k - 1] or self.witness:
                        self._timed(data, start, end, k, t)
            else:
                if others is None:
                    others = []
                others.append((data[pos], data[start:end]))
            pos = end
        self.last = last
        self.count += got
        if pos < n:
            self._tail = data[pos:]
        if got:
            progress = self.shared.progress
            if progress is not None:
                progress(got)
        if others:
            self._other_frames(others)

    def _timed(self, data: bytes, start: int, end: int, k: int, t: float) -> None:
        """Which event this frame carries (its signature), for its latency and the witness's checks."""
        sh = self.shared
        s = data.rfind(b'"sig":"', start, end)
        idx = sh.index.get(data[s + 7 : end - 3]) if s >= start and data.endswith(b'"}]', start, end) else None
        if idx is None:
            self.unknown += 1
            return
        if sh.sampler.mask[k - 1]:
            sh.hist.add(t - sh.t_send[idx])
        if self.witness:
            assert self.seen_events is not None
            if self.seen_events[idx]:
                self.dups += 1
            self.seen_events[idx] = 1
            seq = k + self.base
            prev = sh.seq_of[idx]
            if prev == 0:
                sh.seq_of[idx] = seq
            elif prev != seq:
                sh.mismatched += 1

    def _early(self, texts: list[bytes], t: float) -> None:
        """Frames that came in the same read as the handshake's answer (parsed by WsClient)."""
        self._other_frames([(0x81, m) for m in texts])

    def _other_frames(self, frames: list[tuple[int, bytes]]) -> None:
        for b0, payload in frames:
            opcode = b0 & 0x0F
            if not b0 & 0x80 or opcode == 0x0:
                self.unknown += 1  # a fragment: the forum never sends one
            elif opcode == 0x1:
                try:
                    frame = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    self.unknown += 1
                    continue
                if frame[0] == "LIVE" and frame[1] == self.sub_id:
                    self.live = True
                elif frame[0] == "CLOSED":
                    self.closed_reason = str(frame[2])
                elif frame[0] == "EVENT":
                    self.unknown += 1  # another subscription's
            elif opcode == 0x9:
                self.write(encode_frame(payload, 0xA))
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.write(encode_frame(payload[:2], 0x8))
                if self.transport is not None:
                    self.transport.close()

    def _fail_masked(self) -> None:
        self.unknown += 1
        if self.transport is not None:
            self.transport.abort()


def tally(subs: list[SubscriberConn], shared: Shared) -> dict[str, Any]:
    """What one process sends back: distinct seq bitmaps with their counts, and the witness's checks."""
    bitmaps: Counter[bytes] = Counter(bytes(s.seen) for s in subs)
    witness = next((s for s in subs if s.witness), None)
    return {
        "hist": shared.hist,
        "bitmaps": dict(bitmaps),
        "order": sum(s.order for s in subs),
        "unknown": sum(s.unknown for s in subs),
        "not_live": sum(1 for s in subs if not s.live),
        "closed": sum(1 for s in subs if s.closed_reason is not None),
        "closed_reasons": sorted({s.closed_reason for s in subs if s.closed_reason is not None})[:3],
        "delivered": sum(s.count for s in subs),
        "witness_seen": bytes(witness.seen_events) if witness is not None and witness.seen_events is not None else b"",
        "witness_dups": witness.dups if witness is not None else 0,
        "seq_of": shared.seq_of,
        "mismatched": shared.mismatched,
    }
