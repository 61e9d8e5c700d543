"""Safety controls: kill switch, emergency stop (latched in the database).

The kill switch has two sources (`trading.selectors.safety.kill_switch_of`): the manual latch
(`kill_switch_set`, audited) and the TRADING_KILL_SWITCH_ENABLED flag (env or Flipt). A flip of the
flag is audited and posted by `kill_switch_flag_observe`, run by beat every minute and at the start
of each trade cycle.

Live approvals (two people) are in `trading.services.live_approvals`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from torghut_site.flags import flag_enabled, resolver
from torghut_site.queueing import task_after_commit
from trading.metrics import EMERGENCY_STOPS
from trading.models import Incident, LaneState, SafetyEvent, SafetyState
from trading.models.safety import SafetyEventKind
from trading.notifications import notify_safety_event
from trading.services.equity import DAILY_LOSS, high_water_marks_rebase, session_day_of
from trading.status_cache import status_cache_invalidate

logger = logging.getLogger(__name__)

# reasons that clear by themselves once signals flow again; every other reason (universe
# outage, drawdown, daily loss, fallback ratio, autonomy failure streak) needs a person
RECOVERABLE_PREFIXES = ("signal_lag_exceeded", "signal_staleness_streak")

Actor = AbstractBaseUser | AnonymousUser | None


class SafetyActionError(ValueError):
    pass


class DailyLossLockedError(SafetyActionError):
    """The daily loss limit latched in the current US/Eastern session: no clear until tomorrow."""


def _actor_fields(actor: Actor, actor_label: str | None) -> dict[str, Any]:
    user = actor if isinstance(actor, AbstractBaseUser) else None
    label = actor_label or (user.get_username() if user is not None else "system")
    return {"actor": user, "actor_label": label}


def _locked_state() -> SafetyState:
    SafetyState.objects.get_or_create(scope="global")
    return SafetyState.objects.select_for_update().get(scope="global")


def kill_switch_set(
    *, engaged: bool, actor: Actor, reason: str, actor_label: str | None = None
) -> SafetyState:
    """Engage or release the manual kill switch (audited). Open orders are cancelled by the next
    cycle of every lane, and immediately by a task queued on commit."""
    if not reason.strip():
        raise SafetyActionError("a reason is required")
    with transaction.atomic():
        state = _locked_state()
        state.kill_switch_engaged = engaged
        state.kill_switch_reason = reason if engaged else ""
        state.kill_switch_changed_at = timezone.now()
        state.save()
        status_cache_invalidate()
        event = SafetyEvent.objects.create(
            kind=SafetyEventKind.KILL_SWITCH_ON if engaged else SafetyEventKind.KILL_SWITCH_OFF,
            reason=reason,
            **_actor_fields(actor, actor_label),
        )
        notify_safety_event(event)
        if engaged:
            task_after_commit("trading.tasks.cancel_open_orders_all_lanes")
    return state


KILL_SWITCH_FLAG = "TRADING_KILL_SWITCH_ENABLED"


@dataclass(frozen=True)
class KillSwitchFlagObservation:
    flag: bool  # the flag's value read
    state: SafetyState | None  # the global safety row as read (None: no row yet)
    event: SafetyEvent | None  # the audit event of a flip this call recorded, else None


def kill_switch_flag_observe() -> KillSwitchFlagObservation:
    """Read TRADING_KILL_SWITCH_ENABLED (env or Flipt: one read of the resolver behind
    `flag_enabled`, which also names the value's source) and, when it differs from the value
    last audited (`SafetyState.kill_switch_flag_seen`), record the flip: under the global row's
    lock, compared again there (of two observers one records it), store the new value, write a
    KILL_SWITCH_FLAG_ON/OFF SafetyEvent, post it and move the status cache's generation on.
    Unchanged: one read of the row, nothing written. The flag turned off does not release a
    manual latch (`kill_switch_of` reads both)."""
    resolution = resolver.resolve(KILL_SWITCH_FLAG)
    flag = resolution.value
    state = SafetyState.objects.filter(scope="global").first()
    if (state.kill_switch_flag_seen if state is not None else False) == flag:
        return KillSwitchFlagObservation(flag, state, None)
    with transaction.atomic():
        state = _locked_state()
        if state.kill_switch_flag_seen == flag:  # another observer recorded this flip
            return KillSwitchFlagObservation(flag, state, None)
        state.kill_switch_flag_seen = flag
        state.save(update_fields=["kill_switch_flag_seen", "updated_at"])
        status_cache_invalidate()
        kind = SafetyEventKind.KILL_SWITCH_FLAG_ON if flag else SafetyEventKind.KILL_SWITCH_FLAG_OFF
        event = SafetyEvent.objects.create(
            kind=kind,
            actor_label="flag:" + ("env" if resolution.source == "disabled" else resolution.source),
            reason=KILL_SWITCH_FLAG,
            details={"flag_key": resolution.flag_key, "source": resolution.source},
        )
        notify_safety_event(event)
    logger.warning("kill switch flag flipped", extra={"engaged": flag, "source": resolution.source})
    return KillSwitchFlagObservation(flag, state, event)


def emergency_stop_clear(
    *,
    actor: Actor,
    reason: str,
    actor_label: str | None = None,
    rebase_high_water_mark: bool = False,
) -> SafetyState:
    """Clear a latched emergency stop by hand (audited).

    Refused while a daily-loss reason of today's US/Eastern session is latched: that limit holds
    for the rest of the session. Clearing keeps every lane's equity high-water mark, so a lane
    still in drawdown latches again on its next cycle; `rebase_high_water_mark=True` is the
    operator's explicit acceptance of the loss: each lane's mark drops to its last equity, and
    the moves are recorded in the SafetyEvent.
    """
    if not reason.strip():
        raise SafetyActionError("a reason is required to clear an emergency stop")
    with transaction.atomic():
        state = _locked_state()
        if not state.emergency_stop_active:
            raise SafetyActionError("no emergency stop is latched")
        previous = list(state.emergency_stop_reasons)
        today = f"{DAILY_LOSS}:{session_day_of(timezone.now()).isoformat()}"
        if today in previous:
            raise DailyLossLockedError(
                "the daily loss limit latched in today's session (US/Eastern); it can be "
                "cleared from the next session day"
            )
        state.emergency_stop_active = False
        state.emergency_stop_reasons = []
        state.emergency_stop_clean_cycles = 0
        state.save()
        status_cache_invalidate()
        resolved = _emergency_incidents_resolve()
        details: dict[str, Any] = {"reasons": previous}
        if rebase_high_water_mark:
            details["rebased_high_water_marks"] = high_water_marks_rebase()
        event = SafetyEvent.objects.create(
            kind=SafetyEventKind.EMERGENCY_STOP_CLEARED,
            reason=reason,
            details=details,
            **_actor_fields(actor, actor_label),
        )
        notify_safety_event(event, resolved_incidents=resolved)
    return state


def _emergency_incidents_resolve() -> list[str]:
    """Resolve the open emergency stop incidents (the caller holds the safety row's lock, which
    every latch takes before writing one); their keys."""
    open_incidents = Incident.objects.filter(kind="emergency_stop", resolved_at__isnull=True)
    keys = list(open_incidents.order_by("pk").values_list("incident_key", flat=True))
    Incident.objects.filter(incident_key__in=keys).update(resolved_at=timezone.now())
    return keys


@dataclass(frozen=True)
class EmergencyStopResult:
    active: bool
    triggered: bool
    recovered: bool
    reasons: list[str]


def emergency_stop_reasons(*, lane: LaneState) -> list[str]:
    """Evaluate the triggers of docs/compatibility.md#emergency-stop for one lane's latest state."""
    reasons: list[str] = []
    lag = lane.signal_lag_seconds
    if (
        lane.market_open
        and lag is not None
        and lag >= settings.TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT
    ):
        reasons.append(f"signal_lag_exceeded:{int(lag)}s")
    reason = lane.no_signal_reason
    critical = set(settings.TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS)
    expected_closed = set(settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS)
    suppressed = lane.market_open is False and reason in expected_closed
    if (
        reason in critical
        and not suppressed
        and lane.no_signal_streak >= settings.TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT
    ):
        reasons.append(f"signal_staleness_streak:{reason}")
    if lane.universe_status in ("unavailable", "error"):
        reasons.append("universe_source_unavailable")
    return reasons


def reason_code(reason: str) -> str:
    """`signal_lag_exceeded:900s` -> `signal_lag_exceeded` (the metric label, the latch key)."""
    return reason.split(":")[0]


def _latch_key(reason: str) -> str:
    code = reason_code(reason)
    # a daily loss latches per session day: today's is new even while yesterday's is latched
    return reason if code == DAILY_LOSS else code


def _latch(
    *, state: SafetyState, reasons: list[str], account_label: str, snapshot: dict[str, Any]
) -> list[str]:
    """Latch `reasons` on the locked safety row with their incident, audit event and metric.

    A reason whose code is already latched adds nothing; a new code joins a latch already
    active (so a recoverable latch never auto-recovers past a loss limit). Returns the reasons
    added."""
    latched = {_latch_key(r) for r in state.emergency_stop_reasons}
    added = [r for r in reasons if _latch_key(r) not in latched]
    if not added:
        return []
    now = timezone.now()
    if not state.emergency_stop_active:
        state.emergency_stop_active = True
        state.emergency_stop_reasons = []
        state.emergency_stop_triggered_at = now
    state.emergency_stop_reasons = [*state.emergency_stop_reasons, *added]
    state.emergency_stop_clean_cycles = 0
    state.save()
    status_cache_invalidate()
    incident = _incident_write(reasons=added, snapshot={"lane": account_label, **snapshot}, now=now)
    event = SafetyEvent.objects.create(
        kind=SafetyEventKind.EMERGENCY_STOP_TRIGGERED,
        account_label=account_label,
        actor_label="system",
        reason=", ".join(added),
        details={"incident": incident.incident_key},
    )
    notify_safety_event(event)
    for reason in added:
        EMERGENCY_STOPS.labels(reason=reason_code(reason)).inc()
    logger.error("emergency stop latched", extra={"reasons": added, "lane": account_label})
    return added


def emergency_stop_latch(
    *,
    reasons: list[str],
    account_label: str,
    snapshot: dict[str, Any],
    cancel_all_lanes: bool = True,
) -> EmergencyStopResult:
    """Latch the emergency stop for `reasons` (a no-op while TRADING_EMERGENCY_STOP_ENABLED is
    off). None of these reasons recovers by itself.

    With `cancel_all_lanes`, every lane's open orders are cancelled by a task queued after the
    commit; a trade cycle passes False and cancels its own lane's orders at once (the other
    lanes cancel theirs on their next cycle, since the stop is active)."""
    if not reasons or not flag_enabled("TRADING_EMERGENCY_STOP_ENABLED"):
        return EmergencyStopResult(False, False, False, [])
    with transaction.atomic():
        state = _locked_state()
        added = _latch(state=state, reasons=reasons, account_label=account_label, snapshot=snapshot)
        if added and cancel_all_lanes:
            task_after_commit("trading.tasks.cancel_open_orders_all_lanes")
        return EmergencyStopResult(True, bool(added), False, list(state.emergency_stop_reasons))


def emergency_stop_evaluate(*, lane: LaneState, snapshot: dict[str, Any]) -> EmergencyStopResult:
    """Latch, keep, or auto-recover the emergency stop after a lane's cycle."""
    enabled = flag_enabled("TRADING_EMERGENCY_STOP_ENABLED")
    reasons = emergency_stop_reasons(lane=lane) if enabled else []
    with transaction.atomic():
        state = _locked_state()
        if reasons and _latch(
            state=state, reasons=reasons, account_label=lane.account_label, snapshot=snapshot
        ):
            return EmergencyStopResult(True, True, False, list(state.emergency_stop_reasons))
        if not state.emergency_stop_active:
            return EmergencyStopResult(False, False, False, [])
        if reasons:
            state.emergency_stop_clean_cycles = 0
            state.save(update_fields=["emergency_stop_clean_cycles", "updated_at"])
            return EmergencyStopResult(True, False, False, list(state.emergency_stop_reasons))
        return _recover_after_clean_cycle(state=state, account_label=lane.account_label)


def _recover_after_clean_cycle(*, state: SafetyState, account_label: str) -> EmergencyStopResult:
    recoverable = all(r.startswith(RECOVERABLE_PREFIXES) for r in state.emergency_stop_reasons)
    state.emergency_stop_clean_cycles += 1
    if (
        recoverable
        and state.emergency_stop_clean_cycles >= settings.TRADING_EMERGENCY_STOP_RECOVERY_CYCLES
    ):
        previous = list(state.emergency_stop_reasons)
        state.emergency_stop_active = False
        state.emergency_stop_reasons = []
        state.emergency_stop_clean_cycles = 0
        state.save()
        status_cache_invalidate()
        resolved = _emergency_incidents_resolve()
        event = SafetyEvent.objects.create(
            kind=SafetyEventKind.EMERGENCY_STOP_RECOVERED,
            account_label=account_label,
            actor_label="system",
            reason="clean cycles after recoverable reasons",
            details={"reasons": previous},
        )
        notify_safety_event(event, resolved_incidents=resolved)
        return EmergencyStopResult(False, False, True, previous)
    state.save(update_fields=["emergency_stop_clean_cycles", "updated_at"])
    return EmergencyStopResult(True, False, False, list(state.emergency_stop_reasons))


def _incident_write(*, reasons: list[str], snapshot: dict[str, Any], now: Any) -> Incident:
    key = f"incident-{now:%Y%m%dT%H%M%S}-{now.microsecond:06d}"
    path = f"rollback-incidents/{key}.json"
    body = json.dumps(
        {
            "incident_key": key,
            "reasons": reasons,
            "safety_snapshot": snapshot,
            "created_at": now.isoformat(),
            "provenance": {"version": settings.TORGHUT_VERSION, "commit": settings.TORGHUT_COMMIT},
        },
        indent=2,
        sort_keys=True,
        default=str,
    )
    stored = ""
    try:
        stored = storages["artifacts"].save(path, ContentFile(body.encode("utf-8")))
    except Exception:  # an unreachable artifact store must not stop the latch
        logger.exception("incident artifact could not be stored")
    return Incident.objects.create(
        incident_key=key, reasons=reasons, snapshot=snapshot, artifact_path=stored
    )
