"""A fault layer over the built-in simulated broker and its trade-update feed (test/bench side).

Installed for one process by `chaos_installed(plan)`: it substitutes the lane's broker adapter
where the trading core builds it (`trading.lanes.raw_broker_for_lane`, also bound by name in
`trading.firewall`), and wraps the direct-apply path of the simulated order feed
(`orderfeed.simfeed`: the outbox read and the ingest call). Nothing in the application changes;
the broker underneath is the real simulated broker, with its state in the database.

Broker faults (armed per submit / per lookup by the schedule):
- `ambiguous_after`: the simulated broker accepts the order, then the call raises
  `AmbiguousBrokerError` (a timeout / 504 after acceptance);
- `ambiguous_before`: `AmbiguousBrokerError` (a 502) and nothing reached the broker;
- `retryable`: `RetryableBrokerError` (429 / connection refused) before the broker;
- lookups (`get_order`, `get_order_by_client_id`, `list_orders`) fail with
  `RetryableBrokerError` while `lookup_failures` lasts.
Feed faults (per flush): `drop` (a random subset of the batch never reaches the ingest: only
reconciliation can repair the execution), `duplicate` (a random subset delivered twice),
`reorder` (the batch shuffled); `silent` withholds the outbox entirely (a silent stream).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from unittest import mock

from trading.brokers.base import (
    AmbiguousBrokerError,
    Broker,
    BrokerAccount,
    BrokerClock,
    BrokerOrder,
    BrokerPosition,
    OrderRequest,
    RetryableBrokerError,
)
from trading.brokers.simulated import SimulatedBroker
from trading.lanes import LaneConfig

SUBMIT_FAULTS = ("ambiguous_after", "ambiguous_before", "retryable")
FEED_FAULTS = ("drop", "duplicate", "reorder")


@dataclass
class Ambiguous:
    """One ambiguous submit answer and when it was settled (adopted or closed)."""

    client_order_id: str
    symbol: str
    kind: str  # ambiguous_after | ambiguous_before
    at: float  # time.perf_counter() of the ambiguous answer
    at_step: int = 0  # the schedule step (cycle) of the answer
    resolved_at: float | None = None
    resolved_step: int | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.at


@dataclass
class ChaosPlan:
    """The faults armed right now, and what was injected. One per schedule run."""

    rng: random.Random
    enabled: bool = True
    submit_faults: list[str] = field(default_factory=list)  # the next submits' faults, in order
    lookup_failures: int = 0  # this many next lookups fail
    feed_fault: str = ""  # applied to every flush while set
    silent: bool = False
    injected: Counter[str] = field(default_factory=Counter)
    ambiguous: dict[str, Ambiguous] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # client order ids refused by a fault
    step: int = 0  # the schedule step being played (set by the runner)

    def disarm(self) -> None:
        self.enabled = False
        self.submit_faults.clear()
        self.lookup_failures = 0
        self.feed_fault = ""
        self.silent = False

    def next_submit_fault(self) -> str:
        if not self.enabled or not self.submit_faults:
            return ""
        return self.submit_faults.pop(0)

    def lookup_fails(self) -> bool:
        if not self.enabled or self.lookup_failures <= 0:
            return False
        self.lookup_failures -= 1
        self.injected["lookup_error"] += 1
        return True

    def unresolved(self) -> list[Ambiguous]:
        return [a for a in self.ambiguous.values() if a.resolved_at is None]


class ChaosBroker:
    """The simulated broker adapter with the plan's faults in front of it."""

    def __init__(self, inner: SimulatedBroker, plan: ChaosPlan) -> None:
        self._inner = inner
        self._plan = plan
        self.name = inner.name

    def get_account(self) -> BrokerAccount:
        return self._inner.get_account()

    def list_positions(self) -> list[BrokerPosition]:
        return self._inner.list_positions()

    def get_clock(self) -> BrokerClock:
        return self._inner.get_clock()

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        fault = self._plan.next_submit_fault()
        if fault:
            self._plan.injected[f"submit_{fault}"] += 1
        if fault == "retryable":
            self._plan.refused.add(request.client_order_id)
            raise RetryableBrokerError("chaos: connection refused", status_code=429)
        if fault == "ambiguous_before":
            self._ambiguous(request, fault)
            raise AmbiguousBrokerError("chaos: 502 bad gateway", status_code=502)
        order = self._inner.submit_order(request)
        if fault == "ambiguous_after":
            self._ambiguous(request, fault)
            raise AmbiguousBrokerError("chaos: read timeout after send", status_code=504)
        return order

    def _ambiguous(self, request: OrderRequest, kind: str) -> None:
        self._plan.ambiguous[request.client_order_id] = Ambiguous(
            request.client_order_id, request.symbol, kind, time.perf_counter(), self._plan.step
        )

    def _lookup_guard(self) -> None:
        if self._plan.lookup_fails():
            raise RetryableBrokerError("chaos: 503 on lookup", status_code=503)

    def get_order(self, order_id: str) -> BrokerOrder:
        self._lookup_guard()
        return self._inner.get_order(order_id)

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder:
        self._lookup_guard()
        return self._inner.get_order_by_client_id(client_order_id)

    def list_orders(self, *, status: str = "open", limit: int = 500) -> list[BrokerOrder]:
        self._lookup_guard()
        return self._inner.list_orders(status=status, limit=limit)

    def list_orders_after(self, *, after: datetime, limit: int = 500) -> list[BrokerOrder]:
        self._lookup_guard()
        return self._inner.list_orders_after(after=after, limit=limit)

    def cancel_order(self, order_id: str) -> None:
        self._inner.cancel_order(order_id)

    def cancel_all_orders(self) -> list[str]:
        return self._inner.cancel_all_orders()

    def observe_prices(self, prices: dict[str, tuple[Decimal, datetime]]) -> None:
        self._inner.observe_prices(prices)


def _feed_faulted(plan: ChaosPlan, messages: Sequence[Any]) -> list[Any]:
    batch = list(messages)
    fault = plan.feed_fault if plan.enabled else ""
    if not fault or not batch:
        return batch
    plan.injected[f"feed_{fault}"] += 1
    if fault == "drop":
        kept = [m for m in batch if plan.rng.random() >= 0.5]
        plan.injected["feed_dropped_updates"] += len(batch) - len(kept)
        return kept
    if fault == "duplicate":
        twice = [m for m in batch if plan.rng.random() < 0.5] or batch[:1]
        out = batch + twice
        plan.rng.shuffle(out)
        return out
    plan.rng.shuffle(batch)  # reorder
    return batch


@contextmanager
def chaos_installed(plan: ChaosPlan) -> Iterator[ChaosPlan]:
    """Substitute the lane broker and wrap the simulated feed's direct-apply path for the
    duration (this process only)."""
    import orderfeed.simfeed as simfeed

    real_ingest = getattr(simfeed, "order_events_ingest")  # noqa: B009 - bound by name there
    real_pending = simfeed._pending

    def broker(lane: LaneConfig) -> Broker:
        assert lane.broker == "simulated", "the chaos layer wraps the simulated broker only"
        return ChaosBroker(SimulatedBroker(lane.label), plan)

    def ingest(messages: Sequence[Any], **kwargs: Any) -> Any:
        return real_ingest(_feed_faulted(plan, messages), **kwargs)

    def pending(account_label: str, limit: int) -> list[Any]:
        if plan.enabled and plan.silent:
            plan.injected["feed_silent_flush"] += 1
            return []
        return real_pending(account_label, limit)

    with (
        mock.patch("trading.lanes.raw_broker_for_lane", broker),
        mock.patch("trading.firewall.raw_broker_for_lane", broker),
        mock.patch.object(simfeed, "order_events_ingest", ingest),
        mock.patch.object(simfeed, "_pending", pending),
    ):
        yield plan
