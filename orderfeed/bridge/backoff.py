"""The reconnect backoff: full jitter with a floor, and the longer wait after a refusal for too
many connections."""

from __future__ import annotations

import random

# after a refusal for too many connections: Alpaca counts connections per account, a fast retry
# only renews the refusal
RATE_LIMIT_BACKOFF_SECONDS = 60.0


def backoff_seconds(failures: int, *, minimum: float, maximum: float) -> float:
    """The wait before the next attempt after `failures` consecutive failures (>= 1)."""
    return float(min(maximum, minimum * 2 ** max(failures - 1, 0)))


def jittered_backoff_seconds(
    failures: int, *, minimum: float, maximum: float, rng: random.Random
) -> float:
    """Full jitter with a floor: uniform(0, `backoff_seconds`), never below `minimum`."""
    return max(
        minimum, rng.uniform(0.0, backoff_seconds(failures, minimum=minimum, maximum=maximum))
    )
