"""One review, from a stored request snapshot to a policy outcome (no database writes here
except the circuit breaker's).

Order: guardrail blocks → circuit breaker → DSPy (active) or the legacy call (or, with
LLM_COMMITTEE_ENABLED, the committee's calls: trading/llm/committee.py) → schema → policy.
With LLM_DSPY_RUNTIME_MODE=shadow the legacy review decides and the DSPy answer is stored under
`response_json.dspy_shadow`; with `active` the DSPy answer is the review, and any DSPy failure
falls back to the legacy call with `response_json.dspy.fallback_to_legacy = true`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from trading.llm.circuit import circuit_record_error, circuit_state
from trading.llm.committee import RoleVote, committee_run, votes_from_members
from trading.llm.config import ReviewConfig
from trading.llm.dspy.runtime import DspyReviewError, DspyRunResult, dspy_review
from trading.llm.policy import (
    DeterministicOrder,
    PolicyOutcome,
    Posture,
    apply_policy,
    fail_outcome,
)
from trading.llm.provider import LLMProviderError, chat_complete
from trading.llm.request import review_messages
from trading.llm.schema import ReviewResponse, ReviewSchemaError, parse_review_response


@dataclass
class ReviewRun:
    verdict: str
    outcome: PolicyOutcome
    runtime: str = "legacy"  # legacy | dspy_active | dspy_fallback
    provider: str = ""
    model: str = ""
    prompt_version: str = ""
    program_name: str = ""
    signature_version: str = ""
    artifact_hash: str = ""
    prompt_json: list[dict[str, str]] = field(default_factory=list)
    response_json: dict[str, Any] | None = None
    confidence: float | None = None
    rationale: str = ""
    risk_flags: list[str] = field(default_factory=list)
    adjusted_qty: Decimal | None = None
    adjusted_order_type: str = ""
    error_kind: str = ""  # "", guardrail_block, circuit_open, timeout, http_*, parse_error, ...
    error: str = ""
    tokens_prompt: int = 0
    tokens_completion: int = 0
    latency_ms: int = 0
    committee_votes: list[RoleVote] = field(default_factory=list)


def _error_run(
    order: DeterministicOrder, posture: Posture, *, kind: str, detail: str, reason: str
) -> ReviewRun:
    return ReviewRun(
        verdict="error",
        outcome=fail_outcome(order, fail_mode=posture.fail_mode, reason=reason),
        error_kind=kind,
        error=detail[:500],
    )


def _fill(run: ReviewRun, response: ReviewResponse) -> None:
    run.confidence = response.confidence
    run.rationale = response.rationale
    run.risk_flags = list(response.risk_flags)
    run.adjusted_qty = response.adjusted_qty
    run.adjusted_order_type = response.adjusted_order_type or ""


def _legacy(
    snapshot: dict[str, Any],
    *,
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
    deadline: float,
) -> ReviewRun:
    messages = review_messages(snapshot, prompt_version=config.prompt_version)
    try:
        result = chat_complete(
            messages=messages,
            provider=config.provider,
            model=config.model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            seed=config.seed,
            timeout_seconds=config.timeout_seconds,
            deadline=deadline,
        )
    except LLMProviderError as exc:
        run = _error_run(
            order, posture, kind=exc.kind, detail=str(exc), reason=f"llm_review_error:{exc.kind}"
        )
        run.provider, run.model, run.prompt_json = exc.provider, config.model, messages
        run.prompt_version = config.prompt_version
        return run
    try:
        response, data = parse_review_response(result.content)
    except ReviewSchemaError as exc:
        run = _error_run(
            order, posture, kind=exc.kind, detail=exc.detail, reason=f"llm_review_error:{exc.kind}"
        )
        run.response_json = {"raw": result.content[:4000], "provider": result.raw}
    else:
        run = ReviewRun(
            verdict=response.verdict,
            outcome=apply_policy(response, order=order, config=config, posture=posture),
            response_json={**data, "provider": result.raw, "provider_errors": list(result.errors)},
        )
        _fill(run, response)
    run.provider, run.model = result.provider, result.model
    run.prompt_version, run.prompt_json = config.prompt_version, messages
    run.tokens_prompt, run.tokens_completion = result.tokens_prompt, result.tokens_completion
    run.latency_ms = result.latency_ms
    return run


def _committee(
    snapshot: dict[str, Any],
    *,
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
    deadline: float,
) -> ReviewRun:
    """The committee instead of the single call; a role's error is its fail-closed vote, and
    the review's `error_kind` is `committee_role_error` when any role had one."""
    result = committee_run(snapshot, config=config, deadline=deadline)
    response = result.response
    errors = result.errors()
    answered = [v for v in result.votes if v.model]
    run = ReviewRun(
        verdict=response.verdict,
        outcome=apply_policy(
            response, order=order, config=config, posture=posture, committee=result.members()
        ),
        provider=answered[-1].provider if answered else "",
        model=answered[-1].model if answered else config.model,
        prompt_version=config.prompt_version,
        prompt_json=result.prompts,
        response_json={
            **result.answer,
            "committee": {
                "votes": [v.as_json() for v in result.votes],
                "mandatory_roles": list(config.committee_mandatory_roles),
                "fail_closed_verdict": config.committee_fail_closed_verdict,
            },
        },
        error_kind="committee_role_error" if errors else "",
        error="; ".join(errors)[:500],
        tokens_prompt=result.tokens_prompt,
        tokens_completion=result.tokens_completion,
        latency_ms=result.latency_ms,
        committee_votes=list(result.votes),
    )
    _fill(run, response)
    return run


def _dspy_json(result: DspyRunResult) -> dict[str, Any]:
    return {
        "input": result.review_input,
        "output": result.output.as_contract(),
        "model": result.model,
        "latency_ms": result.latency_ms,
        "tokens_prompt": result.tokens_prompt,
        "tokens_completion": result.tokens_completion,
    }


def review_execute(
    *,
    snapshot: dict[str, Any],
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
    now: datetime,
    deadline_at: datetime,
    dspy_lm: Any | None = None,
) -> ReviewRun:
    """Run one review. `deadline_at` bounds every call; `dspy_lm` replaces the DSPy LM (tests)."""
    if posture.blocked:
        return _error_run(
            order,
            posture,
            kind="guardrail_block",
            detail=",".join(posture.blocked),
            reason="llm_guardrail_block",
        )
    circuit = circuit_state(now=now)
    if circuit.open:
        return _error_run(
            order,
            posture,
            kind="circuit_open",
            detail=f"open until {circuit.open_until.isoformat() if circuit.open_until else '?'}",
            reason="llm_circuit_open",
        )
    deadline = time.monotonic() + max((deadline_at - now).total_seconds(), 0.0)
    mode = config.dspy_runtime_mode
    dspy_note: dict[str, Any] | None = None
    if mode == "active":
        try:
            result = dspy_review(snapshot, config=config, lm=dspy_lm)
        except DspyReviewError as exc:
            dspy_note = {"fallback_to_legacy": True, "error": exc.kind, "detail": exc.detail}
        else:
            response = result.output.to_review_response()
            run = ReviewRun(
                verdict=response.verdict,
                outcome=apply_policy(
                    response,
                    order=order,
                    config=config,
                    posture=posture,
                    committee=result.output.committee,
                ),
                runtime="dspy_active",
                provider="dspy",
                model=f"dspy:{config.dspy_program_name}",
                prompt_version=f"dspy:{config.dspy_signature_version}",
                response_json={"dspy": _dspy_json(result)},
                tokens_prompt=result.tokens_prompt,
                tokens_completion=result.tokens_completion,
                latency_ms=result.latency_ms,
                committee_votes=votes_from_members(result.output.committee),
            )
            _fill(run, response)
            return _with_dspy_identity(run, config)
    ask = _committee if config.committee_enabled else _legacy
    run = ask(snapshot, order=order, config=config, posture=posture, deadline=deadline)
    if run.error_kind:
        circuit_record_error(now=now, error=run.error)
    if dspy_note is not None:
        run.runtime = "dspy_fallback"
        run.response_json = {**(run.response_json or {}), "dspy": dspy_note}
        _with_dspy_identity(run, config)
    elif mode == "shadow":
        try:
            shadow: dict[str, Any] = _dspy_json(dspy_review(snapshot, config=config, lm=dspy_lm))
        except DspyReviewError as exc:
            shadow = {"error": exc.kind, "detail": exc.detail}
        run.response_json = {**(run.response_json or {}), "dspy_shadow": shadow}
        _with_dspy_identity(run, config)
    return run


def _with_dspy_identity(run: ReviewRun, config: ReviewConfig) -> ReviewRun:
    run.program_name = config.dspy_program_name
    run.signature_version = config.dspy_signature_version
    run.artifact_hash = config.dspy_artifact_hash
    return run
