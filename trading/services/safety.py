"""Safety controls: kill switch, emergency stop (latched in the database).

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

from torghut_site.flags import flag_enabled
from trading.metrics import EMERGENCY_STOPS
from trading.models import Incident, LaneState, SafetyEvent, SafetyState
from trading.models.safety import SafetyEventKind

logger = logging.getLogger(__name__)

# reasons that clear by themselves once signals flow again (inventory §2.7)
RECOVERABLE_PREFIXES = ("signal_lag_exceeded", "signal_staleness_streak")

Actor = AbstractBaseUser | AnonymousUser | None


class SafetyActionError(ValueError):
    pass


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
        SafetyEvent.objects.create(
            kind=SafetyEventKind.KILL_SWITCH_ON if engaged else SafetyEventKind.KILL_SWITCH_OFF,
            reason=reason,
            **_actor_fields(actor, actor_label),
        )
        if engaged:
            from trading.tasks import cancel_open_orders_all_lanes

            transaction.on_commit(lambda: cancel_open_orders_all_lanes.delay())
    return state


def emergency_stop_clear(
    *, actor: Actor, reason: str, actor_label: str | None = None
) -> SafetyState:
    if not reason.strip():
        raise SafetyActionError("a reason is required to clear an emergency stop")
    with transaction.atomic():
        state = _locked_state()
        if not state.emergency_stop_active:
            raise SafetyActionError("no emergency stop is latched")
        previous = list(state.emergency_stop_reasons)
        state.emergency_stop_active = False
        state.emergency_stop_reasons = []
        state.emergency_stop_clean_cycles = 0
        state.save()
        Incident.objects.filter(kind="emergency_stop", resolved_at__isnull=True).update(
            resolved_at=timezone.now()
        )
        SafetyEvent.objects.create(
            kind=SafetyEventKind.EMERGENCY_STOP_CLEARED,
            reason=reason,
            details={"reasons": previous},
            **_actor_fields(actor, actor_label),
        )
    return state


@dataclass(frozen=True)
class EmergencyStopResult:
    active: bool
    triggered: bool
    recovered: bool
    reasons: list[str]


def emergency_stop_reasons(*, lane: LaneState) -> list[str]:
    """Evaluate the §2.7 triggers for one lane's latest state."""
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


def emergency_stop_evaluate(*, lane: LaneState, snapshot: dict[str, Any]) -> EmergencyStopResult:
    """Latch, keep, or auto-recover the emergency stop after a lane's cycle."""
    enabled = flag_enabled("TRADING_EMERGENCY_STOP_ENABLED")
    reasons = emergency_stop_reasons(lane=lane) if enabled else []
    with transaction.atomic():
        state = _locked_state()
        if reasons and not state.emergency_stop_active:
            now = timezone.now()
            state.emergency_stop_active = True
            state.emergency_stop_reasons = reasons
            state.emergency_stop_triggered_at = now
            state.emergency_stop_clean_cycles = 0
            state.save()
            incident = _incident_write(
                reasons=reasons, snapshot={"lane": lane.account_label, **snapshot}, now=now
            )
            SafetyEvent.objects.create(
                kind=SafetyEventKind.EMERGENCY_STOP_TRIGGERED,
                account_label=lane.account_label,
                actor_label="system",
                reason=", ".join(reasons),
                details={"incident": incident.incident_key},
            )
            for reason in reasons:
                EMERGENCY_STOPS.labels(reason=reason.split(":")[0]).inc()
            logger.error(
                "emergency stop latched", extra={"reasons": reasons, "lane": lane.account_label}
            )
            return EmergencyStopResult(True, True, False, reasons)
        if not state.emergency_stop_active:
            return EmergencyStopResult(False, False, False, [])
        if reasons:
            state.emergency_stop_clean_cycles = 0
            state.save(update_fields=["emergency_stop_clean_cycles", "updated_at"])
            return EmergencyStopResult(True, False, False, list(state.emergency_stop_reasons))
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
            Incident.objects.filter(kind="emergency_stop", resolved_at__isnull=True).update(
                resolved_at=timezone.now()
            )
            SafetyEvent.objects.create(
                kind=SafetyEventKind.EMERGENCY_STOP_RECOVERED,
                account_label=lane.account_label,
                actor_label="system",
                reason="clean cycles after recoverable reasons",
                details={"reasons": previous},
            )
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
