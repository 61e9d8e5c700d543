"""What a consumer holds: the transient database errors, the idle-pause timings, the batch
prepared ahead, its own metric series and its run's counters."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import InterfaceError, OperationalError
from prometheus_client import Counter, Gauge

from torghut_site.kafka.messages import PreparingHandler, RawMessage

TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)

# Idle (a wait for the first record brought nothing), the partitions are paused for
# `idle_pause_ms` at most, doubling from IDLE_PAUSE_FIRST_SECONDS, and fetched from again between
# pauses for a window of three round trips to the broker, IDLE_FETCH_WINDOW_MIN_SECONDS at least.
# A broker that answers an empty fetch at once (noida-db ignores `fetch.wait.max.ms`) is then
# asked a few times a second instead of thousands: bench/consumer_idle.py.
IDLE_PAUSE_FIRST_SECONDS = 0.05
IDLE_FETCH_WINDOW_MIN_SECONDS = 0.01


class Preparation(NamedTuple):
    """The helper thread that prepares the next batch, and the handler whose step it runs."""

    pool: ThreadPoolExecutor
    handler: PreparingHandler


class Ahead(NamedTuple):
    """A polled batch whose preparation runs on the helper thread."""

    batch: list[RawMessage]
    prepared: Future[Any]


@dataclass(frozen=True)
class ConsumerMetrics:
    """The consumer's own series (names differ per consumer, e.g. the seed's order-feed names)."""

    messages: Counter
    errors: Counter
    lag: Gauge | None = None


@dataclass
class ConsumerStats:
    batches: int = 0
    messages: int = 0
    dead_letters: int = 0
    transient_retries: int = 0
    handler_retries: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_batch_at: float | None = None

    def as_json(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "messages": self.messages,
            "dead_letters": self.dead_letters,
            "transient_retries": self.transient_retries,
            "handler_retries": self.handler_retries,
        }


class StopRequested(Exception):
    pass
