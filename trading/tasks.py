"""Celery tasks: thin, idempotent, taking only ids; each calls one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task, signals

from trading.lanes import enabled_lane_labels, lane_config
from trading.services.cycle import orders_cancel_all, trading_cycle_run
from trading.services.reconcile import reconcile_lane

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_trade_cycle(account_label: str) -> dict[str, Any]:
    """One trade cycle of a lane; a concurrent run of the same lane returns `lane_busy`."""
    return trading_cycle_run(account_label=account_label).as_json()


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def reconcile(account_label: str) -> dict[str, Any]:
    return reconcile_lane(account_label=account_label).as_json()


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def cancel_open_orders(account_label: str, reason: str = "kill_switch") -> int:
    return orders_cancel_all(lane=lane_config(account_label), reason=reason)


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def cancel_open_orders_all_lanes() -> None:
    for label in enabled_lane_labels():
        cancel_open_orders.delay(label)


@signals.worker_ready.connect
def _reconcile_at_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """A restarted worker first makes our books match the broker."""
    try:
        for label in enabled_lane_labels():
            reconcile.delay(label)
    except Exception:  # a broker or DB hiccup must not stop the worker from starting
        logger.exception("could not queue start-up reconciliation")
