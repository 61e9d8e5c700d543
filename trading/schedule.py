"""Trading entries of the Celery beat schedule: per enabled lane, the trade cycle every
TRADING_POLL_MS and reconciliation every TRADING_RECONCILE_MS, and per enabled Alpaca lane the
trade-updates gap fill every 15 s, and, when the Alpaca data API's keys are set, the paper fills'
check against their minute bars every 5 minutes, and, while an operator webhook is configured,
the post of expired live approvals every minute and the requeue of notifications whose send
was lost (or whose next round of attempts is due) every 5 minutes, and always the watch of the
kill switch's env/Flipt flag every minute (each expiring within its period). Registered by
`TradingConfig.ready()`."""

from __future__ import annotations

from django.conf import settings

from torghut_site.schedule import ScheduleEntries, every
from trading.lanes import lane_configs
from trading.notifications import targets_configured

# a gap of the trade-updates stream is filled from REST within max silence + this period
GAP_FILL_PERIOD_SECONDS = 15.0
# paper fills are checked against their minute bars this often (`trading.services.fill_checks`)
FILL_CHECK_PERIOD_SECONDS = 300.0
# live approvals whose TTL ran out are posted to the operators' webhooks within this period
LIVE_APPROVAL_EXPIRY_PERIOD_SECONDS = 60.0
# notifications whose send was lost are queued again within this period (after STUCK_AFTER), and
# failed ones whose next round is due (after ROUND_PAUSE) go back to pending
NOTIFICATION_REQUEUE_PERIOD_SECONDS = 300.0
# a flip of the kill switch's flag is audited and posted within this period (or by the next cycle)
KILL_SWITCH_FLAG_WATCH_PERIOD_SECONDS = 60.0


def trading_schedule() -> ScheduleEntries:
    # scheduled whether or not trading is enabled: TRADING_ENABLED (or its Flipt flag) is read by
    # each cycle, so flipping it on takes effect without restarting beat
    entries: ScheduleEntries = []
    for lane in lane_configs():
        if not lane.enabled:
            continue
        label = lane.label
        entries.append(
            (
                f"trading-cycle-{label}",
                every(
                    settings.TRADING_POLL_MS / 1000,
                    "trading.tasks.run_trade_cycle",
                    {"account_label": label},
                ),
            )
        )
        entries.append(
            (
                f"trading-reconcile-{label}",
                every(
                    settings.TRADING_RECONCILE_MS / 1000,
                    "trading.tasks.reconcile",
                    {"account_label": label},
                ),
            )
        )
        if lane.broker == "alpaca":
            # a no-op while the lane's stream is healthy or the order feed is off
            entries.append(
                (
                    f"trading-trade-stream-gap-fill-{label}",
                    every(
                        GAP_FILL_PERIOD_SECONDS,
                        "trading.tasks.trade_stream_gap_fill_run",
                        {"account_label": label},
                    ),
                )
            )
    # LLM review deadlines: expire overdue reviews (their fail mode applies) and carry on
    # reviewed decisions; a no-op query while LLM review is off
    entries.append(("llm-review-sweep", every(5.0, "trading.tasks.llm_review_sweep")))
    # audited whether or not a webhook is configured (the SafetyEvent is written either way)
    entries.append(
        (
            "trading-kill-switch-flag-watch",
            every(KILL_SWITCH_FLAG_WATCH_PERIOD_SECONDS, "trading.tasks.kill_switch_flag_watch"),
        )
    )
    # the bars come from the Alpaca data API: without its keys there is nothing to check against
    if settings.APCA_API_KEY_ID and settings.APCA_API_SECRET_KEY:
        entries.append(
            (
                "trading-fill-checks",
                every(FILL_CHECK_PERIOD_SECONDS, "trading.tasks.fill_checks_run"),
            )
        )
    if targets_configured():
        entries.append(
            (
                "trading-live-approval-expiry-notify",
                every(
                    LIVE_APPROVAL_EXPIRY_PERIOD_SECONDS,
                    "trading.tasks.live_approvals_expiry_notify",
                ),
            )
        )
        entries.append(
            (
                "trading-notifications-requeue",
                every(NOTIFICATION_REQUEUE_PERIOD_SECONDS, "trading.tasks.notifications_requeue"),
            )
        )
    return entries
