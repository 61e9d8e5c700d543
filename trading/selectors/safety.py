"""Reads of the safety controls: effective kill switch, emergency stop, live approval."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from torghut_site.flags import flag_enabled
from trading.lanes import LaneConfig
from trading.models import (
    LaneState,
    LiveApproval,
    LiveApprovalStatus,
    SafetyEvent,
    SafetyState,
    TradeDecision,
)
from trading.models.decisions import FALLBACK_ANSWERS, SubmitAnswer
from trading.models.safety import SafetyEventKind


@dataclass(frozen=True)
class FirewallVerdict:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class KillSwitchState:
    active: bool
    source: str  # "flag" (env or Flipt), "manual" (admin/API), "" when off
    reason: str


def safety_state_get() -> SafetyState:
    state, _ = SafetyState.objects.get_or_create(scope="global")
    return state


def kill_switch_state() -> KillSwitchState:
    return kill_switch_of(SafetyState.objects.filter(scope="global").first())


def kill_switch_of(state: SafetyState | None, *, flag: bool | None = None) -> KillSwitchState:
    """The effective kill switch given the global safety row already read (None: no row) and,
    when the caller read it already, TRADING_KILL_SWITCH_ENABLED's value (None: read here)."""
    if state is not None and state.kill_switch_engaged:
        return KillSwitchState(True, "manual", state.kill_switch_reason)
    if flag is None:
        flag = flag_enabled("TRADING_KILL_SWITCH_ENABLED")
    if flag:
        return KillSwitchState(True, "flag", "TRADING_KILL_SWITCH_ENABLED")
    return KillSwitchState(False, "", "")


def emergency_stop_active() -> bool:
    return SafetyState.objects.filter(scope="global", emergency_stop_active=True).exists()


def live_approval_active(account_label: str) -> LiveApproval | None:
    """The lane's approved, unrevoked, unexpired two-person approval (newest first), if any."""
    return (
        LiveApproval.objects.filter(
            account_label=account_label,
            status=LiveApprovalStatus.APPROVED,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("-approved_at", "-pk")
        .first()
    )


def submission_verdict(lane: LaneConfig) -> FirewallVerdict:
    """Whether the order firewall may submit for this lane right now (read fresh every time)."""
    if not flag_enabled("TRADING_ENABLED"):
        return FirewallVerdict(False, "trading_disabled")
    if kill_switch_state().active:
        return FirewallVerdict(False, "kill_switch_active")
    if emergency_stop_active():
        return FirewallVerdict(False, "emergency_stop_active")
    if lane.is_live:
        if not flag_enabled("TRADING_LIVE_ENABLED"):
            return FirewallVerdict(False, "live_trading_disabled")
        if live_approval_active(lane.label) is None:
            return FirewallVerdict(False, "live_approval_missing")
    return FirewallVerdict(True)


# the fallback-ratio window: a lane's latest submits within the hour, and too few of them to
# mean anything below the minimum (one ambiguous answer among two is noise, not a trend)
FALLBACK_WINDOW_SUBMITS = 20
FALLBACK_WINDOW = timedelta(hours=1)
FALLBACK_MIN_SUBMITS = 4


@dataclass(frozen=True)
class FallbackWindow:
    submits: int
    fallbacks: int

    @property
    def ratio(self) -> float:
        return self.fallbacks / self.submits if self.submits else 0.0

    @property
    def counts(self) -> bool:
        return self.submits >= FALLBACK_MIN_SUBMITS


def fallback_window(*, account_label: str) -> FallbackWindow:
    """How many of the lane's recent broker submits fell back to the recovery path (no clean
    answer: looked up by client order id, adopted, deferred or closed `submit_unconfirmed`).

    The window starts again at the last manual clear of the emergency stop: the person who
    cleared it has accepted the submits before, which would otherwise latch it again at once."""
    since = timezone.now() - FALLBACK_WINDOW
    cleared = (
        SafetyEvent.objects.filter(kind=SafetyEventKind.EMERGENCY_STOP_CLEARED, at__gt=since)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    answers = list(
        TradeDecision.objects.filter(
            account_label=account_label, submit_answered_at__gte=cleared or since
        )
        .exclude(submit_answer=SubmitAnswer.NONE)
        .order_by("-submit_answered_at")
        .values_list("submit_answer", flat=True)[:FALLBACK_WINDOW_SUBMITS]
    )
    return FallbackWindow(len(answers), sum(1 for a in answers if a in FALLBACK_ANSWERS))


def safety_metrics() -> Iterable[Metric]:
    """Scrape-time gauges of the latches and the lanes' no-signal streaks, read from the database
    (the state every process agrees on), so /metrics shows a latch however it was set."""
    kill_switch = GaugeMetricFamily(
        "torghut_trading_kill_switch_engaged",
        "1 while the kill switch is engaged (source: manual = admin/API, flag = env/Flipt).",
        labels=["source"],
    )
    emergency_stop = GaugeMetricFamily(
        "torghut_trading_emergency_stop_active",
        "1 while the emergency stop is latched.",
    )
    streak = GaugeMetricFamily(
        "torghut_trading_no_signal_streak",
        "Consecutive cycles of each lane without a signal.",
        labels=["lane"],
    )
    try:
        state = kill_switch_state()
        for source in ("manual", "flag"):
            kill_switch.add_metric([source], 1.0 if state.source == source else 0.0)
        emergency_stop.add_metric([], 1.0 if emergency_stop_active() else 0.0)
        for lane, value in LaneState.objects.values_list("account_label", "no_signal_streak"):
            streak.add_metric([lane], float(value))
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    return [kill_switch, emergency_stop, streak]
