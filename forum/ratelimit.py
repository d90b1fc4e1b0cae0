"""Token buckets keyed by author or client address (in memory, per process)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """One bucket per key: ``rate`` tokens a second refill up to ``burst``.

    ``rate == 0`` disables the limit. Idle buckets (full again) are forgotten
    when the table grows past ``max_keys``, so memory stays bounded.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def take(self, key: str, n: float = 1.0) -> float:
        """Take ``n`` tokens. Returns 0.0 on success, else the seconds until they would be there."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= n:
            self._buckets[key] = (tokens - n, now)
            if len(self._buckets) > self.max_keys:
                self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (n - tokens) / self.rate

    def charge(self, key: str, n: float) -> None:
        """Take ``n`` tokens whatever is left: the bucket may go into debt, down to ``-burst``
        (work already done, e.g. a response sent; the key's next :meth:`take` waits for it)."""
        if self.rate <= 0:
            return
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        self._buckets[key] = (max(-self.burst, tokens - n), now)
        if len(self._buckets) > self.max_keys:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full_after = 2 * self.burst / self.rate  # from a debt of -burst
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


def publish_cost(nbytes: int, token_bytes: int) -> float:
    """Address tokens one published event of ``nbytes`` costs: 1, plus 1 per ``token_bytes``.

    A batch costs the sum over its lines, so 16 MB costs the same whether it
    arrives as one batch or as 16 MB of single events (docs/protocol.md, "Limits").
    """
    return 1.0 + nbytes / token_bytes
