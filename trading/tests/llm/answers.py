"""Scripted reviewer answers: the legacy JSON contract and DSPy's chat-adapter format."""

from __future__ import annotations

import json
from typing import Any

VERDICTS = ("approve", "veto", "adjust", "abstain", "escalate")


def legacy(verdict: str = "approve", **overrides: Any) -> dict[str, Any]:
    """A valid legacy review answer for `verdict` (probability 0.9 on it)."""
    probabilities = {v: (0.9 if v == verdict else 0.025) for v in VERDICTS}
    answer: dict[str, Any] = {
        "verdict": verdict,
        "confidence": 0.9,
        "confidence_band": "high",
        "calibrated_probabilities": probabilities,
        "uncertainty": {"score": 0.2, "band": "low"},
        "calibration_metadata": {},
        "adjusted_qty": None,
        "adjusted_order_type": None,
        "limit_price": None,
        "escalate_reason": None,
        "rationale": f"{verdict}: thesis and downside reviewed",
        "required_checks": ["risk_engine", "order_firewall"],
        "risk_flags": [],
    }
    answer.update(overrides)
    return answer


def legacy_json(verdict: str = "approve", **overrides: Any) -> str:
    return json.dumps(legacy(verdict, **overrides))


def committee(verdict: str = "approve", **by_role: str) -> list[dict[str, Any]]:
    roles = ("researcher", "risk_critic", "execution_critic", "policy_judge")
    return [
        {
            "role": role,
            "verdict": by_role.get(role, verdict),
            "confidence": 0.8,
            "uncertainty_band": "low",
            "rationale_short": f"{role} view",
            "required_checks": [],
            "risk_flags": [],
        }
        for role in roles
    ]


def dspy_fields(verdict: str = "approve", **overrides: Any) -> dict[str, Any]:
    """The program's output fields (what an LM answers for TradeReviewCommitteeSignatureV1)."""
    fields: dict[str, Any] = {
        "verdict": verdict,
        "confidence": 0.85,
        "rationale": f"committee: {verdict}",
        "rationale_short": verdict,
        "required_checks": ["risk_engine", "order_firewall", "execution_policy"],
        "risk_flags": [],
        "adjusted_qty": "none",
        "adjusted_order_type": "none",
        "limit_price": "none",
        "escalate_reason": "none",
        "uncertainty_band": "low",
        "committee": committee(verdict if verdict != "adjust" else "approve"),
        "calibration_metadata": {"quality_score": 0.8},
    }
    fields.update(overrides)
    return fields


def chat_adapter_text(fields: dict[str, Any]) -> str:
    """`fields` as DSPy's ChatAdapter expects an LM to write them."""
    parts = []
    for name, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"[[ ## {name} ## ]]\n{text}")
    parts.append("[[ ## completed ## ]]")
    return "\n\n".join(parts)


def dspy_text(verdict: str = "approve", **overrides: Any) -> str:
    return chat_adapter_text(dspy_fields(verdict, **overrides))


ROLES = ("researcher", "risk_critic", "execution_critic", "policy_judge")


def vote(verdict: str = "approve", **overrides: Any) -> dict[str, Any]:
    """A valid committee vote (trading/llm/schema.py::CommitteeVote)."""
    answer: dict[str, Any] = {
        "verdict": verdict,
        "confidence": 0.8,
        "uncertainty": "low",
        "rationale_short": f"{verdict}: role view",
        "required_checks": ["risk_engine"],
        "risk_flags": [],
        "adjusted_qty": None,
        "adjusted_order_type": None,
        "limit_price": None,
        "escalate_reason": None,
    }
    answer.update(overrides)
    return answer


def asked_role(body: dict[str, Any]) -> str:
    """The committee role a chat request asks (from its system message's role block)."""
    system = str(body["messages"][0]["content"])
    return system.split("Committee role: ", 1)[1].split(".", 1)[0]


def by_role(default: str = "approve", **answers: str | dict[str, Any]) -> Any:
    """A responder answering each role's call: a verdict name, a vote dict or raw text."""

    def respond(body: dict[str, Any]) -> str:
        answer = answers.get(asked_role(body), default)
        if isinstance(answer, dict):
            return json.dumps(answer)
        return json.dumps(vote(answer)) if answer in VERDICTS else answer

    return respond
