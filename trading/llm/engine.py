"""One review, from a stored request snapshot to a policy outcome (no database writes here
except the circuit breaker's).

Order: guardrail blocks → circuit breaker → DSPy (active) or the legacy call (or, with
LLM_COMMITTEE_ENABLED, the committee's calls: trading/llm/committee.py) → schema → policy, then
the numbers the answer states checked against the snapshot (trading/llm/evidence.py).
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

from torghut_site.hashing import canonical_text
from trading.llm.circuit import circuit_record_error, circuit_state
from trading.llm.committee import RoleVote, committee_run, votes_from_members
from trading.llm.config import ReviewConfig
from trading.llm.dspy.runtime import DspyReviewError, DspyRunResult, dspy_review
from trading.llm.evidence import check_numbers, evidence_outcome
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
from trading.llm.usage import CallUsage, bounded_body


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
    tokens_prompt: int = 0  # over every call the review made (`calls`)
    tokens_completion: int = 0
    latency_ms: int = 0
    evidence_reasons: tuple[str, ...] = ()  # numbers the snapshot does not support (evidence.py)
    # reproducibility: the raw answer the verdict was parsed from, and every call's usage
    response_body: str = ""
    system_fingerprint: str = ""
    calls: list[CallUsage] = field(default_factory=list)

    def add_call(self, call: CallUsage) -> None:
        self.calls.append(call)
        self.tokens_prompt += call.tokens_prompt
        self.tokens_completion += call.tokens_completion

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


def evidence_check(
    run: ReviewRun,
    numbers: Any,
    *,
    snapshot: dict[str, Any],
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
) -> ReviewRun:
    """Reject a parsed, judged answer when `numbers` (the answer, with its committee) states a
    number the snapshot does not support: an error (`evidence_mismatch`) with every reason, and
    the fail mode's outcome in place of the policy's (a veto when the policy vetoed anyway). The
    invented numbers are dropped from the run; the raw answer stays in `response_json`."""
    reasons = check_numbers(numbers, order, snapshot, config.evidence_price_band_bps)
    if not reasons:
        return run
    fail_mode = "veto" if run.outcome.vetoed else posture.fail_mode
    run.outcome = evidence_outcome(order, fail_mode=fail_mode, reasons=reasons)
    run.verdict, run.error_kind, run.error = "error", "evidence_mismatch", ",".join(reasons)[:500]
    run.evidence_reasons = tuple(reasons)
    run.adjusted_qty, run.adjusted_order_type = None, ""
    return run


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
        evidence_check(
            run, response, snapshot=snapshot, order=order, config=config, posture=posture
        )
    run.provider, run.model = result.provider, result.model
    run.prompt_version, run.prompt_json = config.prompt_version, messages
    run.add_call(CallUsage("legacy", result.model, result.tokens_prompt, result.tokens_completion))
    run.response_body = bounded_body(result.content)
    run.system_fingerprint = str(result.raw.get("system_fingerprint") or "")[:128]
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
        latency_ms=result.latency_ms,
        committee_votes=list(result.votes),
        # the aggregate the policy judged, in the review contract (each role's raw answer is
        # in `response_json.committee.votes`): the stored-answer replay re-judges it
        response_body=canonical_text(result.answer),
    )
    for vote in result.votes:
        model = vote.model or config.model
        run.add_call(
            CallUsage(f"committee:{vote.role}", model, vote.tokens_prompt, vote.tokens_completion)
        )
    _fill(run, response)
    return evidence_check(
        run, response, snapshot=snapshot, order=order, config=config, posture=posture
    )


def _dspy_json(result: DspyRunResult) -> dict[str, Any]:
    return {
        "input": result.review_input,
        "output": result.output.as_contract(),
        "model": result.model,
        "latency_ms": result.latency_ms,
        "tokens_prompt": result.tokens_prompt,
        "tokens_completion": result.tokens_completion,
        # the LM's raw answers through the provider adapter (none with a test LM)
        "lm_completions": [bounded_body(str(c["content"])) for c in result.completions],
    }


def dspy_body(output: Any) -> str:
    """A DSPy review's stored body: the program's output contract as canonical JSON (the text
    the replay re-validates; the LM's raw answers are kept in `response_json.dspy`)."""
    return canonical_text(output.as_contract())


def _dspy_active(
    result: DspyRunResult,
    snapshot: dict[str, Any],
    *,
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
) -> ReviewRun:
    response = result.output.to_review_response()
    run = ReviewRun(
        verdict=response.verdict,
        outcome=apply_policy(
            response, order=order, config=config, posture=posture, committee=result.output.committee
        ),
        runtime="dspy_active",
        provider="dspy",
        model=f"dspy:{config.dspy_program_name}",
        prompt_version=f"dspy:{config.dspy_signature_version}",
        prompt_json=[m for c in result.completions for m in c["messages"]],
        response_json={"dspy": _dspy_json(result)},
        latency_ms=result.latency_ms,
        response_body=dspy_body(result.output),
        committee_votes=votes_from_members(result.output.committee),
        system_fingerprint=next(
            (str(c["system_fingerprint"]) for c in result.completions if c["system_fingerprint"]),
            "",
        )[:128],
    )
    run.add_call(CallUsage("dspy", config.model, result.tokens_prompt, result.tokens_completion))
    _fill(run, response)
    evidence_check(
        run, result.output, snapshot=snapshot, order=order, config=config, posture=posture
    )
    return _with_dspy_identity(run, config)


def _dspy_shadow(
    run: ReviewRun, snapshot: dict[str, Any], *, config: ReviewConfig, lm: Any, allowed: bool
) -> None:
    """The DSPy answer beside the legacy review (recorded only); its call is one of the
    review's calls, reserved apart (`allowed=False`: its reservation was refused)."""
    if not allowed:
        shadow: dict[str, Any] = {"error": "budget_exceeded", "detail": "no call made"}
    else:
        try:
            result = dspy_review(snapshot, config=config, lm=lm)
        except DspyReviewError as exc:
            shadow = {"error": exc.kind, "detail": exc.detail}
            used = (exc.tokens_prompt, exc.tokens_completion)
        else:
            shadow = _dspy_json(result)
            used = (result.tokens_prompt, result.tokens_completion)
        run.add_call(CallUsage("dspy_shadow", config.model, *used))
    run.response_json = {**(run.response_json or {}), "dspy_shadow": shadow}


def review_execute(
    *,
    snapshot: dict[str, Any],
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
    now: datetime,
    deadline_at: datetime,
    dspy_lm: Any | None = None,
    dspy_shadow_allowed: bool = True,
) -> ReviewRun:
    """Run one review. `deadline_at` bounds every call; `dspy_lm` replaces the DSPy LM (tests);
    `dspy_shadow_allowed=False` skips the shadow DSPy call (its budget was refused)."""
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
    failed: DspyReviewError | None = None
    if mode == "active":
        try:
            result = dspy_review(snapshot, config=config, lm=dspy_lm)
        except DspyReviewError as exc:
            failed = exc
        else:
            return _dspy_active(result, snapshot, order=order, config=config, posture=posture)
    ask = _committee if config.committee_enabled else _legacy
    run = ask(snapshot, order=order, config=config, posture=posture, deadline=deadline)
    if run.error_kind:
        circuit_record_error(now=now, error=run.error)
    if failed is not None:
        run.runtime = "dspy_fallback"
        note = {"fallback_to_legacy": True, "error": failed.kind, "detail": failed.detail}
        run.response_json = {**(run.response_json or {}), "dspy": note}
        run.add_call(
            CallUsage("dspy", config.model, failed.tokens_prompt, failed.tokens_completion)
        )
        _with_dspy_identity(run, config)
    elif mode == "shadow":
        _dspy_shadow(run, snapshot, config=config, lm=dspy_lm, allowed=dspy_shadow_allowed)
        _with_dspy_identity(run, config)
    return run


def _with_dspy_identity(run: ReviewRun, config: ReviewConfig) -> ReviewRun:
    run.program_name = config.dspy_program_name
    run.signature_version = config.dspy_signature_version
    run.artifact_hash = config.dspy_artifact_hash
    return run
