"""Reads behind `GET /trading/llm-evaluation` and the `llm` / `llm_evaluation` blocks of
`/trading/status` (the original's field names, docs/compatibility.md#endpoints)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from trading.llm.circuit import circuit_state
from trading.llm.config import ReviewConfig
from trading.llm.policy import review_posture
from trading.market_context import MarketContextPolicy

MARKET_TZ = ZoneInfo("America/New_York")
VERDICTS = ("approve", "veto", "adjust", "abstain", "escalate", "error")
EFFECTS = ("pass", "shrink", "veto", "shadow")

# One statement over the reviews created in the window (index `llm_review_created_idx`): counts,
# sums and averages, the ten most frequent risk flags, and the calibration quality where the answer
# gave a number. Column order matches VERDICTS and EFFECTS.
_EVALUATION_SQL = """
WITH w AS (
    SELECT status, verdict, effect, confidence, tokens_prompt, tokens_completion, risk_flags,
           response_json, error, market_context_reasons
    FROM llm_decision_reviews WHERE created_at >= %s AND created_at < %s
), flags AS (
    SELECT f AS flag, count(*) AS n
    FROM w, jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(w.risk_flags) = 'array' THEN w.risk_flags ELSE '[]'::jsonb END
    ) AS f
    GROUP BY f ORDER BY n DESC, f LIMIT 10
), q AS (
    SELECT CASE WHEN jsonb_typeof(response_json -> 'calibration_metadata' -> 'quality_score')
                     = 'number'
                THEN (response_json -> 'calibration_metadata' ->> 'quality_score')::float
           END AS quality
    FROM w
)
SELECT
    count(*),
    count(*) FILTER (WHERE status = 'pending'),
    count(*) FILTER (WHERE verdict = 'approve'),
    count(*) FILTER (WHERE verdict = 'veto'),
    count(*) FILTER (WHERE verdict = 'adjust'),
    count(*) FILTER (WHERE verdict = 'abstain'),
    count(*) FILTER (WHERE verdict = 'escalate'),
    count(*) FILTER (WHERE verdict = 'error'),
    count(*) FILTER (WHERE effect = 'pass'),
    count(*) FILTER (WHERE effect = 'shrink'),
    count(*) FILTER (WHERE effect = 'veto'),
    count(*) FILTER (WHERE effect = 'shadow'),
    avg(confidence),
    coalesce(sum(tokens_prompt), 0),
    coalesce(sum(tokens_completion), 0),
    count(*) FILTER (WHERE error LIKE 'market\\_context\\_%%'),
    count(*) FILTER (WHERE jsonb_array_length(market_context_reasons) > 0
                     AND error NOT LIKE 'market\\_context\\_%%'),
    (SELECT avg(quality) FROM q),
    (SELECT count(quality) FROM q),
    (SELECT coalesce(jsonb_agg(jsonb_build_array(flag, n) ORDER BY n DESC, flag), '[]'::jsonb)
     FROM flags)
FROM w
"""


def market_day(now: datetime | None = None) -> date:
    """Today in America/New_York."""
    return (now or timezone.now()).astimezone(MARKET_TZ).date()


def evaluation_window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=MARKET_TZ)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=MARKET_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def _round(value: Any, places: int = 4) -> float | None:
    return None if value is None else round(float(value), places)


def llm_evaluation(*, day: date | None = None) -> dict[str, Any]:
    """The reviews created on `day` (America/New_York; default today), aggregated in one query."""
    day = day or market_day()
    start, end = evaluation_window(day)
    with connection.cursor() as cursor:
        cursor.execute(_EVALUATION_SQL, [start, end])
        row = cursor.fetchone()
    total, pending = row[0], row[1]
    verdicts = dict(zip(VERDICTS, row[2 : 2 + len(VERDICTS)], strict=True))
    at = 2 + len(VERDICTS)
    effects = dict(zip(EFFECTS, row[at : at + len(EFFECTS)], strict=True))
    at += len(EFFECTS)
    avg_conf, tok_prompt, tok_completion, mc_blocked, mc_shadow, quality, samples, flags = row[at:]
    answered = total - pending
    if isinstance(flags, str):  # Django's psycopg adapter hands jsonb results over as text
        flags = json.loads(flags)
    return {
        "window": {
            "date": day.isoformat(),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "timezone": str(MARKET_TZ),
        },
        "total_reviews": total,
        "pending_reviews": pending,
        "verdict_counts": verdicts,
        "error_rate": _round(verdicts["error"] / answered) if answered else 0.0,
        "avg_confidence": _round(avg_conf),
        "decision_contribution": {
            "vetoed": effects["veto"],
            "shrunk": effects["shrink"],
            "passed": effects["pass"],
            "shadow": effects["shadow"],
        },
        "tokens": {"prompt": int(tok_prompt), "completion": int(tok_completion)},
        "top_risk_flags": [{"flag": flag, "count": n} for flag, n in flags],
        "calibration_quality": {"avg_quality_score": _round(quality), "samples": samples},
        "market_context": {"blocked": mc_blocked, "shadow": mc_shadow},
    }


def _posture_json(config: ReviewConfig, *, is_live: bool) -> dict[str, Any]:
    posture = review_posture(config, is_live=is_live)
    return {
        "shadow": posture.shadow,
        "shadow_reasons": list(posture.shadow_reasons),
        "guardrail_blocks": list(posture.blocked),
        "fail_mode_effective": posture.fail_mode,
        "adjustments_allowed": posture.adjustments_allowed,
    }


def llm_status(*, now: datetime | None = None) -> dict[str, Any]:
    """The review's configuration as a lane would see it, the circuit, and the market context."""
    config = ReviewConfig.current()
    circuit = circuit_state(now=now or timezone.now())
    return {
        "enabled": config.enabled,
        "provider": config.provider,
        "model": config.model,
        "prompt_version": config.prompt_version,
        "rollout_stage": config.rollout_stage,
        "shadow_mode": config.shadow_mode,
        "policy_resolution": {
            "fail_mode_configured": config.fail_mode,
            "fail_mode_enforcement": config.fail_mode_enforcement,
            "fail_open_live_approved": config.fail_open_live_approved,
            "paper": _posture_json(config, is_live=False),
            "live": _posture_json(config, is_live=True),
        },
        "circuit": {
            "open": circuit.open,
            "open_until": circuit.open_until.isoformat() if circuit.open_until else None,
            "recent_errors": circuit.recent_errors,
        },
        "committee": {
            # the committee runs inside the DSPy program (LLM_DSPY_RUNTIME_MODE)
            "enabled": config.dspy_runtime_mode != "disabled",
            "roles": list(config.committee_roles),
            "mandatory_roles": list(config.committee_mandatory_roles),
        },
        "dspy": {
            "runtime_mode": config.dspy_runtime_mode,
            "artifact_hash": config.dspy_artifact_hash,
        },
        "market_context": MarketContextPolicy.current().as_json(),
        "deadline_seconds": settings.LLM_REVIEW_DEADLINE_SECONDS,
    }
