"""One scalable time unit for every timeout in the async tests.

Like the websockets project's ``MS`` constant: tests never hard-code seconds,
they write ``timeout(n)``, meaning *n units*.  One unit is one second by
default; a slow or loaded machine (CI on 2 cores, a debugger, coverage) can
stretch every timeout at once::

    MYCELIUM_TEST_TIMEOUT_UNIT=3 scripts/test

Usage::

    from tests.support.timeouts import timeout

    async with asyncio.timeout(timeout(2)):   # 2 s by default
        await client.recv()

Pick ``n`` for how long the operation may take on a healthy machine plus a
comfortable margin; a timeout is a failure detector, not a sleep.  Use
``UNIT`` directly only for polling intervals and the like.
"""

from __future__ import annotations

import os

ENV_VAR = "MYCELIUM_TEST_TIMEOUT_UNIT"


def _read_unit() -> float:
    raw = os.environ.get(ENV_VAR, "1.0")
    try:
        unit = float(raw)
    except ValueError:
        raise RuntimeError(f"{ENV_VAR} must be a number of seconds, got {raw!r}") from None
    if not unit > 0:
        raise RuntimeError(f"{ENV_VAR} must be positive, got {raw!r}")
    return unit


#: Seconds per timeout unit (``MYCELIUM_TEST_TIMEOUT_UNIT``, default 1.0).
UNIT: float = _read_unit()


def timeout(n: float = 1.0) -> float:
    """Return ``n`` timeout units in seconds (``n * UNIT``)."""
    return n * UNIT
