"""Celery tasks: thin, idempotent, taking only ids; each calls one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task, signals

from trading.lanes import enabled_lane_labels, lane_config
from trading.notifications import notification_deliver, notifications_requeue_lost
from trading.services.cycle import lane_reviews_continue, orders_cancel_all, trading_cycle_run
from trading.services.fill_checks import fill_check_run
from trading.services.gap_fill import trade_stream_gap_fill
from trading.services.live_approvals import live_approvals_expired_notify
from trading.services.llm_budget import budget_sweep
from trading.services.reconcile import reconcile_lane
from trading.services.reviews import review_run, reviews_expire
from trading.services.safety import kill_switch_flag_observe
from trading.services.stability import stability_probe_run

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_trade_cycle(account_label: str) -> dict[str, Any]:
    """One trade cycle of a lane; a concurrent run of the same lane returns `lane_busy`."""
    return trading_cycle_run(account_label=account_label).as_json()


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def reconcile(account_label: str) -> dict[str, Any]:
    return reconcile_lane(account_label=account_label).as_json()


@shared_task(ignore_result=True, soft_time_limit=45, time_limit=60)
def trade_stream_gap_fill_run(account_label: str) -> dict[str, Any]:
    """While the lane's trade-updates stream is unhealthy, apply what the broker's order list
    says (a no-op while healthy); idempotent, bounded to a few pages."""
    return trade_stream_gap_fill(account_label=account_label).as_json()


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def cancel_open_orders(account_label: str, reason: str = "kill_switch") -> int:
    return orders_cancel_all(lane=lane_config(account_label), reason=reason)


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def cancel_open_orders_all_lanes() -> None:
    for label in enabled_lane_labels():
        cancel_open_orders.delay(label)


@shared_task(ignore_result=True, soft_time_limit=330, time_limit=360)
def llm_review_run(review_id: int) -> dict[str, Any]:
    """Run one LLM review (idempotent: only the first run of a pending review calls a model),
    then carry its decision on if no cycle holds the lane."""
    outcome = review_run(review_id=review_id)
    continued: dict[str, int] = {}
    if outcome.result == "completed" and outcome.effect != "shadow":
        from trading.models import LLMDecisionReview

        label = LLMDecisionReview.objects.values_list("account_label", flat=True).get(pk=review_id)
        continued = lane_reviews_continue(account_label=label)
    return {"review_id": review_id, "result": outcome.result, "continued": continued}


@shared_task(ignore_result=True, soft_time_limit=330, time_limit=360)
def llm_stability_probe_run(review_id: int) -> dict[str, Any]:
    """Ask a completed review again once and record whether its verdict flipped (idempotent:
    the probe row is claimed before the call, one per review)."""
    outcome = stability_probe_run(review_id=review_id)
    return {"review_id": review_id, "result": outcome.result, "flipped": outcome.flipped}


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def llm_review_sweep() -> dict[str, Any]:
    """Beat: apply the fail mode to reviews past their deadline, then carry on every lane's
    reviewed decisions that no cycle picked up yet; settle spend reservations a crashed
    worker left behind (at their reserved amount, trading/services/llm_budget.py)."""
    expired = reviews_expire()
    swept = budget_sweep()
    continued = {
        label: lane_reviews_continue(account_label=label) for label in enabled_lane_labels()
    }
    return {
        "expired": expired,
        "swept_reservations": swept,
        "continued": {k: v for k, v in continued.items() if v},
    }


@shared_task(ignore_result=True, soft_time_limit=240, time_limit=270)
def fill_checks_run() -> dict[str, Any]:
    """Beat: check the paper lanes' new fills against their minute bars (idempotent: a fill is
    checked once; bounded to one batch of fills and one bars request per symbol and day)."""
    return fill_check_run().as_json()


@shared_task(bind=True, ignore_result=True, soft_time_limit=60, time_limit=90, max_retries=None)
def notification_send(self: Any, notification_id: int) -> str:
    """Post one notification; a failed attempt is retried with backoff until the service marks
    the row failed (trading.notifications.MAX_ATTEMPTS)."""
    result = notification_deliver(notification_id=notification_id)
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in)
    return result.status


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def live_approvals_expiry_notify() -> list[str]:
    """Beat (while a webhook is configured): post live approvals and requests whose TTL ran out
    (idempotent: one notification per approval)."""
    return live_approvals_expired_notify()


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def notifications_requeue() -> list[int]:
    """Beat (while a webhook is configured): queue again the sends of notifications whose send
    was lost, and start the next round of failed ones whose round is due
    (trading.notifications.notifications_requeue_lost)."""
    return notifications_requeue_lost()


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def kill_switch_flag_watch() -> bool:
    """Beat: audit and post a flip of the kill switch's env/Flipt flag (idempotent: a flip is
    recorded once, trading.services.safety.kill_switch_flag_observe). The flag's value."""
    return kill_switch_flag_observe().flag


@signals.worker_ready.connect
def _reconcile_at_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """A restarted worker first makes our books match the broker."""
    try:
        for label in enabled_lane_labels():
            reconcile.delay(label)
    except Exception:  # a broker or DB hiccup must not stop the worker from starting
        logger.exception("could not queue start-up reconciliation")
