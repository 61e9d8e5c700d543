"""The review circuit breaker, kept in the database so every worker shares it.

LLM_CIRCUIT_MAX_ERRORS errors within LLM_CIRCUIT_WINDOW_SECONDS open it for
LLM_CIRCUIT_COOLDOWN_SECONDS; while it is open no call is made and the fail mode applies. After
the cool-down the next review tries again (half-open); its errors count from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from trading.models import LLMCircuitBreaker

REVIEW_CIRCUIT = "llm_review"


@dataclass(frozen=True)
class CircuitState:
    open: bool
    open_until: datetime | None
    recent_errors: int


def circuit_state(*, now: datetime, key: str = REVIEW_CIRCUIT) -> CircuitState:
    row = LLMCircuitBreaker.objects.filter(key=key).first()
    if row is None:
        return CircuitState(False, None, 0)
    is_open = row.open_until is not None and row.open_until > now
    return CircuitState(is_open, row.open_until if is_open else None, len(row.error_times))


def circuit_record_error(*, now: datetime, error: str, key: str = REVIEW_CIRCUIT) -> CircuitState:
    """Count one failed call; open the circuit when the window holds the maximum."""
    window_start = now - timedelta(seconds=settings.LLM_CIRCUIT_WINDOW_SECONDS)
    with transaction.atomic():
        LLMCircuitBreaker.objects.get_or_create(key=key)
        row = LLMCircuitBreaker.objects.select_for_update().get(key=key)
        times = [t for t in row.error_times if datetime.fromisoformat(t) > window_start] + [
            now.isoformat()
        ]
        row.last_error = error[:500]
        if len(times) >= settings.LLM_CIRCUIT_MAX_ERRORS:
            row.open_until = now + timedelta(seconds=settings.LLM_CIRCUIT_COOLDOWN_SECONDS)
            row.trips += 1
            times = []
        row.error_times = times
        row.save(update_fields=["error_times", "open_until", "trips", "last_error", "updated_at"])
    is_open = row.open_until is not None and row.open_until > now
    return CircuitState(is_open, row.open_until if is_open else None, len(times))
