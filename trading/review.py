"""The LLM review hook of the decision chain.

Until the LLM review engine exists (its own issue) this is an explicit pass-through, recorded as
a verdict so every decision shows that no review took place. The contract it keeps for the real
engine: a review may veto or shrink a trade (qty ≤ the deterministic size), never enlarge it.
"""

from __future__ import annotations

from trading.gates import Candidate, CycleContext, GateVerdict


def review_candidate(candidate: Candidate, ctx: CycleContext) -> GateVerdict:
    return GateVerdict("llm_review", True, (), {"mode": "pass_through", "reviewed": False})
