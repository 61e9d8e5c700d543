"""Per-run finalize tokens: what lets an AgentRun report on its own run, and on no other.

`run_token(run_id, attempt)` is `wprun.<attempt>.<hex>`, the hex an HMAC-SHA256 of the run id and
the attempt keyed by SECRET_KEY under a fixed salt (Django's `salted_hmac`). Dispatch hands it to
the AgentRun as the `finalizeToken` parameter; it is never stored: the AgentRun row and the
dispatch step keep `[redacted]` in its place, and a presented token is checked by computing it
again and comparing in constant time. It opens `POST /whitepapers/runs/<run_id>/finalize` of
that run only, for an attempt the run has reached. Rotating SECRET_KEY invalidates the tokens
of AgentRuns still running (they cannot finalize; an operator can, or a requeue).
"""

from __future__ import annotations

import hmac
from typing import Any

from django.db.models import Max
from django.utils.crypto import salted_hmac

from whitepapers.models import WhitepaperAnalysisRun

FINALIZE_TOKEN_PARAMETER = "finalizeToken"  # noqa: S105 (a parameter name, not a secret)
REDACTED = "[redacted]"
_REDACTED_KEYS = frozenset({FINALIZE_TOKEN_PARAMETER})
_SALT = "torghut.whitepapers.run_token.finalize"
_PREFIX = "wprun"
_MAX_ATTEMPT_DIGITS = 6


def run_token(run_id: str, attempt: int) -> str:
    digest = salted_hmac(_SALT, f"{run_id}\n{attempt}", algorithm="sha256").hexdigest()
    return f"{_PREFIX}.{attempt}.{digest}"


def _token_attempt(run_id: str, token: str) -> int | None:
    """The attempt `token` was issued for, if it is `run_id`'s token; no database access."""
    prefix, _, rest = token.partition(".")
    attempt_text, _, _ = rest.partition(".")
    if prefix != _PREFIX or not attempt_text.isdigit() or len(attempt_text) > _MAX_ATTEMPT_DIGITS:
        return None
    attempt = int(attempt_text)
    if attempt < 1:
        return None
    expected = run_token(run_id, attempt)
    return attempt if hmac.compare_digest(expected.encode(), token.encode()) else None


def run_token_verify(*, run_id: str, token: str) -> int | None:
    """The attempt of `run_id` whose token `token` is, or None.

    Any attempt up to the highest the run has reached (its dispatch attempt, an AgentRun, a
    dispatch step: an ambiguous submit leaves a step and no AgentRun, and its agent may still
    finalize) is accepted; a run that does not exist accepts none."""
    attempt = _token_attempt(run_id, token)
    if attempt is None:
        return None
    reached = (
        WhitepaperAnalysisRun.objects.filter(run_id=run_id)
        .annotate(agentrun_max=Max("agentruns__attempt"), step_max=Max("steps__attempt"))
        .values_list("dispatch_attempt", "agentrun_max", "step_max")
        .first()
    )
    if reached is None:
        return None
    return attempt if attempt <= max(n or 0 for n in reached) else None


def token_redacted(value: Any) -> Any:
    """`value` (a dispatch payload, Jangar's answer) with every `finalizeToken` redacted, to be
    stored or shown."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key in _REDACTED_KEYS else token_redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [token_redacted(item) for item in value]
    return value
