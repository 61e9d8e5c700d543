"""What one model call of a review used, so a review's cost is the sum over its calls.

A review may make several calls (the DSPy program and the legacy fallback, the DSPy shadow call,
a committee's roles): each appends one `CallUsage` to `ReviewRun.calls`, and the spend ledger
(trading/services/llm_budget.py) prices each at its own model's price.
"""

from __future__ import annotations

from dataclasses import dataclass

# how much of a raw answer a review row keeps (`LLMDecisionReview.response_body`)
RESPONSE_BODY_MAX_CHARS = 64 * 1024


@dataclass(frozen=True)
class CallUsage:
    name: str  # legacy | dspy | dspy_shadow | ... (the reservation a call is settled under)
    model: str
    tokens_prompt: int
    tokens_completion: int


def bounded_body(text: str) -> str:
    """The raw answer as stored: at most RESPONSE_BODY_MAX_CHARS characters."""
    return text[:RESPONSE_BODY_MAX_CHARS]
