"""A whole answer in the program's output fields for one verdict: the compile lane's labelled
demos (trading/services/dspy_lanes/compile.py) and the demo model's answers
(trading/llm/demo_server.py) are built the same way. No `dspy` import."""

from __future__ import annotations

from typing import Any

COMMITTEE_ROLES = ("researcher", "risk_critic", "execution_critic", "policy_judge")


def verdict_outputs(
    verdict: str,
    *,
    confidence: float,
    rationale: str,
    veto_flag: str,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Every output field, in the signature's order; `veto_flag` is the risk flag a veto
    carries, and every committee role votes the verdict."""
    flags = [veto_flag] if verdict == "veto" else []
    return {
        "verdict": verdict,
        "confidence": confidence,
        "rationale": rationale,
        "rationale_short": verdict,
        "required_checks": ["risk_engine", "order_firewall", "execution_policy"],
        "risk_flags": flags,
        "adjusted_qty": "none",
        "adjusted_order_type": "none",
        "limit_price": "none",
        "escalate_reason": "none",
        "uncertainty_band": "medium",
        "committee": [
            {
                "role": role,
                "verdict": verdict,
                "confidence": confidence,
                "uncertainty_band": "medium",
                "rationale_short": f"{role}: {verdict}",
                "required_checks": [],
                "risk_flags": flags,
            }
            for role in COMMITTEE_ROLES
        ],
        "calibration_metadata": metadata,
    }
