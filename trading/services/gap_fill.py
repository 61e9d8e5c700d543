"""The gap fill of an unhealthy broker `trade_updates` stream, from the broker's REST order list.

While a lane's stream is unhealthy (`trading.selectors.trade_stream`), nobody hears of fills:
the beat task `trade_stream_gap_fill_run` (every 15 s per Alpaca lane) lists the orders the
stream may have missed and applies each through the order-state path (`execution_apply_order`),
so the executions stay right until the stream is back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from trading.brokers.base import FINAL_ORDER_STATUSES, Broker, BrokerError, BrokerOrder
from trading.lanes import LaneConfig, UnknownLaneError, broker_for_lane, lane_config
from trading.metrics import RECONCILE_RESULTS, TRADE_STREAM_GAP_FILLS
from trading.models import Execution
from trading.selectors.trade_stream import trade_stream_watch
from trading.services.execution import execution_apply_order
from trading.services.reconcile import broker_order_record, reconcile_lane
from trading.services.trade_stream import trade_stream_gauge_set

logger = logging.getLogger(__name__)

# orders are listed from a little before the earliest time that matters: the stream's receive
# time (our clock) and the broker's submission time (its clock) are compared
GAP_FILL_OVERLAP = timedelta(seconds=60)
GAP_FILL_PAGE_SIZE = 500  # Alpaca's maximum
GAP_FILL_MAX_PAGES = 4  # per run: 4 requests every 15 s stay far under 200 requests/min


@dataclass
class GapFillResult:
    account_label: str
    status: str = "healthy"  # not_watched | healthy | filled | broker_error
    stream: str = ""  # the stream's state when the run began
    listed: int = 0  # orders the broker returned
    applied: int = 0  # executions moved forward
    unknown_orders: int = 0  # orders torghut never sent, recorded and flagged
    adopted: int = 0  # orders of decisions still `submitting`, adopted by the reconciliation
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def trade_stream_gap_fill(*, account_label: str, now: datetime | None = None) -> GapFillResult:
    """While the lane's stream is unhealthy, list the orders submitted since the earlier of the
    oldest open execution and the last stream event (Alpaca's `after` is on the submission time,
    so an open order sent long ago is covered too) and apply each through the order-state path.
    Idempotent: an execution never moves backwards. A no-op (no broker call) while healthy."""
    result = GapFillResult(account_label=account_label)
    try:
        lane = lane_config(account_label)
    except UnknownLaneError:
        result.status = "not_watched"
        return result
    now = now or timezone.now()
    watch = trade_stream_watch(lane=lane, now=now)
    result.stream = watch.health.state
    trade_stream_gauge_set(account_label=lane.label, health=watch.health)
    if not watch.health.state:
        result.status = "not_watched"
        return result
    if watch.health.healthy or watch.oldest_open_submitted_at is None:
        return result
    starts = [t for t in (watch.oldest_open_submitted_at, watch.last_event_at) if t is not None]
    try:
        orders = orders_since(broker_for_lane(lane), after=min(starts) - GAP_FILL_OVERLAP)
    except BrokerError as exc:
        result.status = "broker_error"
        result.error = f"{type(exc).__name__}: {exc}"[:500]
        TRADE_STREAM_GAP_FILLS.labels(account=lane.label, outcome="broker_error").inc()
        logger.warning(
            "gap fill: order listing failed", extra={"lane": lane.label, **asdict(result)}
        )
        return result
    result.status = "filled"
    result.listed = len(orders)
    _apply(lane=lane, orders=orders, result=result)
    TRADE_STREAM_GAP_FILLS.labels(account=lane.label, outcome="filled").inc()
    logger.info("gap fill", extra={"lane": lane.label, **asdict(result)})
    return result


def orders_since(
    broker: Broker, *, after: datetime, page_size: int = GAP_FILL_PAGE_SIZE
) -> list[BrokerOrder]:
    """Up to GAP_FILL_MAX_PAGES pages, oldest first. The next page starts a microsecond before
    the last order's submission (orders submitted in the same microsecond are not skipped; the
    repeats are dropped by id)."""
    orders: dict[str, BrokerOrder] = {}
    cursor = after
    for _ in range(GAP_FILL_MAX_PAGES):
        page = broker.list_orders_after(after=cursor, limit=page_size)
        new = [order for order in page if order.id not in orders]
        orders.update((order.id, order) for order in new)
        last = page[-1].submitted_at if page else None
        if len(page) < page_size or not new or last is None:
            break
        cursor = last - timedelta(microseconds=1)
    return list(orders.values())


def _apply(*, lane: LaneConfig, orders: list[BrokerOrder], result: GapFillResult) -> None:
    executions = {
        e.client_order_id: e
        for e in Execution.objects.filter(
            account_label=lane.label, client_order_id__in=[o.client_order_id for o in orders]
        )
    }
    needs_adoption = False
    for order in orders:
        execution = executions.get(order.client_order_id)
        if execution is not None:
            if execution.status not in FINAL_ORDER_STATUSES and execution_apply_order(
                execution=execution, order=order, source="gap_fill"
            ):
                result.applied += 1
                RECONCILE_RESULTS.labels(account=lane.label, result="gap_fill").inc()
            continue
        found = broker_order_record(lane=lane, order=order)
        # ours and still `submitting`: the reconciliation adopts it (and records the answer)
        needs_adoption = needs_adoption or found.submitting is not None
        result.unknown_orders += 1 if found.unknown else 0
    if needs_adoption:
        result.adopted = reconcile_lane(account_label=lane.label).adopted
