"""The review committee (LLM_COMMITTEE_ENABLED): one call per role of LLM_COMMITTEE_ROLES instead
of the single legacy call, and the votes aggregated into one answer in the review contract, which
then goes through the same deterministic policy (`trading.llm.policy.apply_policy`, with the votes
as the committee so a mandatory role's veto vetoes).

Roles: researcher (thesis quality and expected edge), risk_critic (downside and policy
violations), execution_critic (feasibility under microstructure and execution), policy_judge
(schema, calibration, deterministic checks). Each role sees the same system prompt and request as
the single review, with its role block appended to the system message, and answers the vote
contract (`trading.llm.schema.CommitteeVote`).

The calls are made one after the other, in the configured order, all under the review's one
deadline (each HTTP timeout is cut to what is left), so a review makes at most
len(LLM_COMMITTEE_ROLES) calls. A role whose call fails (provider error, timeout, deadline) or
whose answer is outside the contract counts as LLM_COMMITTEE_FAIL_CLOSED_VERDICT, with
confidence 0 and high uncertainty, and its error is recorded on its vote.

Aggregation (`committee_aggregate`, the original service's order):
1. a mandatory role (LLM_COMMITTEE_MANDATORY_ROLES) missing or vetoing: veto, confidence 1.0;
2. else escalate > abstain (→ the fail-closed verdict) > adjust > approve; no approve or adjust
   at all (only non-mandatory vetoes): the fail-closed verdict;
3. confidence = the mean of the votes', uncertainty band = the highest of the votes';
4. adjust takes the first adjusting role's quantity, order type and limit price; an adjust
   without a quantity, or a limit type without a limit price, is the fail-closed verdict.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from trading.llm.config import ReviewConfig
from trading.llm.provider import LLMProviderError, chat_complete
from trading.llm.request import review_messages
from trading.llm.schema import (
    BAND_RANK,
    DspyCommitteeMember,
    ReviewResponse,
    ReviewSchemaError,
    parse_committee_vote,
)

ROLE_FOCUS = {
    "researcher": "thesis quality and expected edge",
    "risk_critic": "stress-test the downside and policy violations",
    "execution_critic": "feasibility under market microstructure and execution constraints",
    "policy_judge": "schema, confidence calibration and the deterministic checks required",
}
ROLE_BLOCK = """

Committee role: {role}. For this call you are one member of the review committee; judge only
{focus}. Answer with one JSON object and nothing else, with exactly these keys (this replaces
the answer format above):
{{
  "verdict": "approve" | "veto" | "adjust" | "abstain" | "escalate",
  "confidence": number in [0, 1],
  "uncertainty": "low" | "medium" | "high",
  "rationale_short": at most 280 characters,
  "required_checks": subset of the required checks above,
  "risk_flags": list of short strings,
  "adjusted_qty": number or null (for "adjust"; at most the decision's qty),
  "adjusted_order_type": "market" | "limit" | null,
  "limit_price": number or null (required when adjusted_order_type is "limit"),
  "escalate_reason": string or null
}}"""
VERDICT_NAMES = ("approve", "veto", "adjust", "abstain", "escalate")
LIMIT_TYPES = ("limit", "stop_limit")


@dataclass(frozen=True)
class RoleVote:
    """One role's vote as stored in `llm_committee_votes` (an error vote carries `error`)."""

    role: str
    verdict: str
    confidence: float
    uncertainty_band: str
    rationale_short: str
    required_checks: tuple[str, ...] = ()
    risk_flags: tuple[str, ...] = ()
    adjusted_qty: Decimal | None = None
    adjusted_order_type: str = ""
    limit_price: Decimal | None = None
    escalate_reason: str = ""
    error_kind: str = ""  # "", parse_error, validation_error, timeout, http_*, deadline, ...
    error: str = ""
    provider: str = ""
    model: str = ""
    tokens_prompt: int = 0
    tokens_completion: int = 0
    latency_ms: int = 0
    response_sha256: str = ""
    called: bool = True  # False for a DSPy program's member (no call of its own)

    @property
    def schema_error(self) -> bool:
        return self.error_kind in ("parse_error", "validation_error")

    def member(self) -> DspyCommitteeMember:
        return DspyCommitteeMember.model_validate(
            {
                "role": self.role,
                "verdict": self.verdict,
                "confidence": self.confidence,
                "uncertainty_band": self.uncertainty_band,
                "rationale_short": self.rationale_short,
                "required_checks": list(self.required_checks),
                "risk_flags": list(self.risk_flags),
            }
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("adjusted_qty", "limit_price"):
            data[key] = None if data[key] is None else str(data[key])
        data["required_checks"], data["risk_flags"] = (
            list(self.required_checks),
            list(self.risk_flags),
        )
        return data


@dataclass(frozen=True)
class CommitteeResult:
    votes: tuple[RoleVote, ...]
    response: ReviewResponse
    answer: dict[str, Any]  # the aggregate, in the review contract
    prompts: list[dict[str, str]] = field(default_factory=list)

    @property
    def tokens_prompt(self) -> int:
        return sum(v.tokens_prompt for v in self.votes)

    @property
    def tokens_completion(self) -> int:
        return sum(v.tokens_completion for v in self.votes)

    @property
    def latency_ms(self) -> int:
        return sum(v.latency_ms for v in self.votes)

    def errors(self) -> list[str]:
        return [f"{v.role} {v.error_kind}: {v.error}" for v in self.votes if v.error_kind]

    def members(self) -> list[DspyCommitteeMember]:
        return [v.member() for v in self.votes]


def committee_messages(
    snapshot: dict[str, Any], *, prompt_version: str, role: str
) -> list[dict[str, str]]:
    """The single review's messages with the role block appended to the system message."""
    messages = review_messages(snapshot, prompt_version=prompt_version)
    block = ROLE_BLOCK.format(role=role, focus=ROLE_FOCUS[role])
    return [{**messages[0], "content": messages[0]["content"] + block}, *messages[1:]]


def committee_budget_messages(
    snapshot: dict[str, Any], *, config: ReviewConfig
) -> list[list[dict[str, str]]]:
    """Every call's messages, for the spend reservation (one list per call the review makes)."""
    if not config.committee_enabled:
        return [review_messages(snapshot, prompt_version=config.prompt_version)]
    return [
        committee_messages(snapshot, prompt_version=config.prompt_version, role=role)
        for role in config.committee_roles
    ]


def _error_vote(role: str, config: ReviewConfig, *, kind: str, detail: str) -> RoleVote:
    return RoleVote(
        role=role,
        verdict=config.committee_fail_closed_verdict,
        confidence=0.0,
        uncertainty_band="high",
        rationale_short=f"committee_role_error:{kind}",
        error_kind=kind,
        error=detail[:480],
    )


def committee_ask(
    snapshot: dict[str, Any], *, config: ReviewConfig, role: str, deadline: float
) -> RoleVote:
    """One role's call and vote; never raises (an error is the fail-closed vote)."""
    started = time.monotonic()
    try:
        result = chat_complete(
            messages=committee_messages(snapshot, prompt_version=config.prompt_version, role=role),
            provider=config.provider,
            model=config.model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            seed=config.seed,
            timeout_seconds=config.timeout_seconds,
            deadline=deadline,
        )
    except LLMProviderError as exc:
        vote = _error_vote(role, config, kind=exc.kind, detail=str(exc))
        return _replace(vote, provider=exc.provider, model=config.model, latency_ms=_ms(started))
    usage: dict[str, Any] = {
        "provider": result.provider,
        "model": result.model,
        "tokens_prompt": result.tokens_prompt,
        "tokens_completion": result.tokens_completion,
        "latency_ms": result.latency_ms,
        "response_sha256": hashlib.sha256(result.content.encode()).hexdigest(),
    }
    try:
        answer, _ = parse_committee_vote(result.content)
    except ReviewSchemaError as exc:
        return _replace(_error_vote(role, config, kind=exc.kind, detail=exc.detail), **usage)
    return RoleVote(
        role=role,
        verdict=answer.verdict,
        confidence=answer.confidence,
        uncertainty_band=answer.uncertainty,
        rationale_short=answer.rationale_short,
        required_checks=tuple(answer.required_checks),
        risk_flags=tuple(answer.risk_flags),
        adjusted_qty=answer.adjusted_qty,
        adjusted_order_type=answer.adjusted_order_type or "",
        limit_price=answer.limit_price,
        escalate_reason=(answer.escalate_reason or "").strip(),
        **usage,
    )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _replace(vote: RoleVote, **changes: Any) -> RoleVote:
    return RoleVote(**{**asdict(vote), **changes})


def committee_run(
    snapshot: dict[str, Any], *, config: ReviewConfig, deadline: float
) -> CommitteeResult:
    """Ask every configured role in turn (at most len(config.committee_roles) calls)."""
    votes = tuple(
        committee_ask(snapshot, config=config, role=role, deadline=deadline)
        for role in config.committee_roles
    )
    answer = committee_aggregate(
        votes,
        mandatory_roles=config.committee_mandatory_roles,
        fail_closed=config.committee_fail_closed_verdict,
    )
    prompts = [
        {**message, "committee_role": role}
        for role in config.committee_roles
        for message in committee_messages(snapshot, prompt_version=config.prompt_version, role=role)
    ]
    return CommitteeResult(votes, ReviewResponse.model_validate(answer), answer, prompts)


def _probabilities(verdict: str, confidence: float) -> dict[str, float]:
    rest = (1.0 - confidence) / 4
    return {name: (confidence if name == verdict else rest) for name in VERDICT_NAMES}


def _verdict(votes: Sequence[RoleVote], fail_closed: str) -> str:
    said = {v.verdict for v in votes}
    if "escalate" in said:
        return "escalate"
    if "abstain" in said:
        return fail_closed
    if "adjust" in said:
        return "adjust"
    if "approve" in said:
        return "approve"
    return fail_closed


def committee_aggregate(
    votes: Sequence[RoleVote], *, mandatory_roles: Sequence[str], fail_closed: str
) -> dict[str, Any]:
    """The votes as one answer in the review contract (the order in the module docstring)."""
    checks = sorted({c for v in votes for c in v.required_checks})
    flags = sorted({f for v in votes for f in v.risk_flags})
    by_role = {v.role: v for v in votes}
    vetoes = [r for r in mandatory_roles if r not in by_role or by_role[r].verdict == "veto"]
    if vetoes:
        return {
            "verdict": "veto",
            "confidence": 1.0,
            "confidence_band": "high",
            "calibrated_probabilities": _probabilities("veto", 1.0),
            "uncertainty": {"score": 0.0, "band": "low"},
            "rationale": f"mandatory_committee_veto: {', '.join(vetoes)}",
            "required_checks": checks,
            "risk_flags": sorted({*flags, "mandatory_committee_veto"}),
        }
    verdict = _verdict(votes, fail_closed)
    confidence = round(sum(v.confidence for v in votes) / len(votes), 4) if votes else 0.0
    band = max((v.uncertainty_band for v in votes), key=BAND_RANK.__getitem__, default="high")
    answer: dict[str, Any] = {
        "confidence": confidence,
        "confidence_band": _confidence_band(confidence),
        "uncertainty": {"score": round(1.0 - confidence, 4), "band": band},
        "required_checks": checks,
        "risk_flags": flags,
    }
    if verdict == "adjust":
        adjustment = _adjustment(next(v for v in votes if v.verdict == "adjust"))
        if adjustment is None:
            verdict = fail_closed
        else:
            answer.update(adjustment)
    if verdict == "escalate":
        reasons = [v.escalate_reason for v in votes if v.verdict == verdict and v.escalate_reason]
        answer["escalate_reason"] = (reasons or ["committee_requested_escalation"])[0][:280]
    answer["verdict"] = verdict
    answer["calibrated_probabilities"] = _probabilities(verdict, confidence)
    answer["rationale"] = f"committee_aggregate_{verdict}"
    return answer


def _confidence_band(confidence: float) -> str:
    return "high" if confidence >= 0.75 else "medium" if confidence >= 0.5 else "low"


def _adjustment(source: RoleVote) -> dict[str, Any] | None:
    """The first adjusting role's numbers; None (→ the fail-closed verdict) when incomplete."""
    if source.adjusted_qty is None:
        return None
    if source.adjusted_order_type in LIMIT_TYPES and source.limit_price is None:
        return None
    return {
        "adjusted_qty": str(source.adjusted_qty),
        "adjusted_order_type": source.adjusted_order_type or None,
        "limit_price": None if source.limit_price is None else str(source.limit_price),
    }


def votes_from_members(members: Sequence[DspyCommitteeMember]) -> list[RoleVote]:
    """The DSPy program's committee members as votes (no per-role call or usage)."""
    return [
        RoleVote(
            role=m.role,
            verdict=m.verdict,
            confidence=m.confidence,
            uncertainty_band=m.uncertainty_band,
            rationale_short=m.rationale_short,
            required_checks=tuple(m.required_checks),
            risk_flags=tuple(m.risk_flags),
            called=False,
        )
        for m in members
    ]
