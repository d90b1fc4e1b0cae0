"""Status checkpoints (forum/scores/checkpoints.py): hysteresis reproducible from the log.

The schedule is a function of seq alone; the reference chain computed over a log keeps a
target that oscillates around a threshold in its status, while each fit alone flips it.
"""

from __future__ import annotations

import itertools

from forum.scores.checkpoints import (
    MIN_STEP,
    StatusReference,
    advance,
    is_checkpoint,
    last_checkpoint,
    step_at,
)
from forum.scores.documents import fitted_document
from forum.scores.ledger import Ledger
from forum.store import event_from_row
from raters.bridging import HYSTERESIS, SUPPORT_LEVEL
from tests.support.oscillation import oscillating_log


def test_schedule_from_seq_alone() -> None:
    assert MIN_STEP & (MIN_STEP - 1) == 0  # a power of two
    cps = [c for c in range(1, 1 << 17) if is_checkpoint(c)]
    assert cps[:9] == [256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560]
    # last_checkpoint is the largest checkpoint <= upto
    j = 0
    for upto in range(0, 1 << 17):
        while j + 1 < len(cps) and cps[j + 1] <= upto:
            j += 1
        assert last_checkpoint(upto) == (cps[j] if cps[0] <= upto else 0)
    # four per doubling past 2,048; the gap never exceeds a quarter of the log there
    for m in range(12, 17):
        assert sum(1 for c in cps if (1 << m) <= c < (1 << (m + 1))) == 4
    assert all(b - a <= max(MIN_STEP, a // 4) for a, b in itertools.pairwise(cps))
    assert step_at(1 << 20) == 1 << 18


def test_chain_costs_a_few_fits_of_the_whole_log() -> None:
    """Each checkpoint fits its prefix: the sum of the prefixes stays ~7 logs long."""
    for n in (10_000, 100_000, 1_000_000, 10_000_000):
        total = 0
        c = last_checkpoint(n)
        while c:
            total += c
            c = last_checkpoint(c - 1)
        assert total <= 7.5 * n, (n, total / n)


def replay(with_reference: bool) -> tuple[list[str], list[float], list[int]]:
    """Statuses at every swing of the oscillating log.  With the reference: the fitted
    documents as the forum makes them (warm-started, the chain advanced whenever the log
    passes a checkpoint); without: each prefix classified alone."""
    events, target, swings = oscillating_log(swings=8, gap=120)
    ledger, ref = Ledger(), StatusReference()
    statuses, lows, refs = [], [], []
    init = None
    for seq, e in enumerate(events, 1):
        if with_reference and (c := ref.due(seq - 1)):
            ref = advance(ref, ledger, c)
        ledger.apply(seq, event_from_row(e.payload, e.sig, e.id))
        if seq not in swings:
            continue
        if not with_reference:
            alone = advance(StatusReference(), ledger, seq)  # no previous status
            statuses.append(alone.status[target])
            continue
        if c := ref.due(seq):
            ref = advance(ref, ledger, c)
        doc, result = fitted_document(ledger, init, ref)
        init = result.first_pass
        i = doc["targets"].index(target)
        statuses.append(doc["result"]["bridging"]["status"][i])
        lows.append(doc["result"]["bridging"]["side_low"][i])
        refs.append(doc["status_reference"]["as_of_seq"])
    return statuses, lows, refs


def test_an_oscillating_target_keeps_its_status() -> None:
    raw, _, _ = replay(with_reference=False)
    # without a reference each fit decides alone: the status flips with every swing
    assert all(a != b for a, b in itertools.pairwise(raw)), raw
    kept, lows, refs = replay(with_reference=True)
    assert min(lows) < SUPPORT_LEVEL < max(lows)  # the figures do cross the level...
    assert all(abs(x - SUPPORT_LEVEL) < HYSTERESIS for x in lows)  # ...within the margin
    assert len(set(kept)) == 1, kept  # and the published status stays
    assert kept[0] == raw[0]  # the one it had when first decided
    assert sorted(set(refs)) == [256, 512, 768, 1024]  # through four checkpoints


def test_a_status_changes_when_the_figures_cross_by_more_than_the_margin() -> None:
    """The chain is not a lock: a reference the figures have clearly left is dropped."""
    events, target, _ = oscillating_log(swings=0)
    ledger = Ledger()
    for seq, e in enumerate(events, 1):
        ledger.apply(seq, event_from_row(e.payload, e.sig, e.id))
    doc, _ = fitted_document(ledger)
    i = doc["targets"].index(target)
    first = doc["result"]["bridging"]["status"][i]
    stale = StatusReference(ledger.head, {t: "rejected" for t in doc["targets"]})
    doc2, _ = fitted_document(ledger, None, stale)
    assert doc2["result"]["bridging"]["status"][i] == first != "rejected"
    assert doc2["status_reference"] == {
        "as_of_seq": ledger.head,
        "status": ["rejected"] * len(doc["targets"]),
    }


def test_sybils_timed_around_a_checkpoint_cannot_lock_a_status() -> None:
    """15 fresh keys rate the hovering proposal -1 just before checkpoint 256 and retract just
    after it: the reference at 256 is the protected pipeline's (newcomers weigh at most
    two raters per target), and a reference only holds within the margin, so every
    status published later is what it would be without the attack, except where the
    figures sit within HYSTERESIS of a level."""
    from clients.sdk import builders
    from clients.sdk.keys import derive_key

    events, target, _ = oscillating_log(swings=0)
    assert len(events) < 256 - 15
    sybils = [derive_key("sybil", str(i)) for i in range(15)]
    t = 1_710_000_000_000
    attack = [builders.rating(k, target=target, score=-1.0, created_at=t + i) for i, k in enumerate(sybils)]
    # pad to just before the checkpoint, then retract after it
    filler = derive_key("sybil", "filler")
    pad = [builders.agent(filler, name=f"f{i}", about="pad", created_at=t + 100 + i) for i in range(256 - len(events) - len(attack))]
    undo = [builders.retraction(k, target=a.id, created_at=t + 1000 + i) for i, (k, a) in enumerate(zip(sybils, attack, strict=True))]
    tail = [builders.agent(filler, name=f"g{i}", about="pad", created_at=t + 2000 + i) for i in range(20)]

    def published(log: list) -> dict[str, str]:  # type: ignore[type-arg]
        ledger, ref = Ledger(), StatusReference()
        for seq, e in enumerate(log, 1):
            if c := ref.due(seq - 1):
                ref = advance(ref, ledger, c)
            ledger.apply(seq, event_from_row(e.payload, e.sig, e.id))
        if c := ref.due(ledger.head):
            ref = advance(ref, ledger, c)
        doc, _ = fitted_document(ledger, None, ref)
        b = doc["result"]["bridging"]
        return {t: (s, lo, hi, md) for t, s, lo, hi, md in zip(doc["targets"], b["status"], b["side_low"], b["side_high"], b["side_mid"], strict=True)}

    attacked = published([*events, *attack, *pad, *undo, *tail])
    honest = published([*events, *pad, *tail])
    assert attacked.keys() == honest.keys()
    for target, (status, lo, hi, md) in attacked.items():
        if status != honest[target][0]:
            levels = (SUPPORT_LEVEL, 0.0, -0.1, 0.1, -0.3)
            assert min(abs(x - v) for x in (lo, hi, md) for v in levels) <= HYSTERESIS, (target, status, honest[target])
