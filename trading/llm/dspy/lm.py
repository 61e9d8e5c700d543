"""DSPy's language model over torghut's provider adapter.

A DSPy custom engine (`complete(Request) -> Response`): DSPy builds the prompt, this engine sends
it through `trading.llm.provider.chat_complete` (same endpoints, keys, timeouts and fallback as
the legacy review) and counts tokens. DSPy's own cache and retries are off: a review is one
bounded attempt, and the compile lanes must see the real model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage, response_to_events

from trading.llm.provider import LLMProviderError, chat_complete


class ProviderEngine:
    def __init__(
        self,
        *,
        provider: str,
        model: str,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        timeout_seconds: float,
        deadline: float | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.timeout_seconds = timeout_seconds
        self.deadline = deadline
        self.tokens_prompt = 0
        self.tokens_completion = 0
        self.calls = 0
        self.answered_by = ""
        # each call's messages and raw answer, for the review row (trading/services/reviews.py)
        self.completions: list[dict[str, Any]] = []

    def complete(self, request: Any) -> Any:
        messages: list[dict[str, str]] = []
        if request.system is not None:
            system = (
                request.system
                if isinstance(request.system, str)
                else "".join(getattr(part, "text", "") for part in request.system)
            )
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise LLMProviderError("deadline", "DSPy review deadline reached")
        self.calls += 1
        result = chat_complete(
            messages=messages,
            provider=self.provider,
            model=self.model,
            temperature=self.temperature,
            max_tokens=request.config.max_tokens or self.max_tokens,
            seed=self.seed,
            timeout_seconds=self.timeout_seconds,
            deadline=self.deadline,
            json_mode=False,
        )
        self.tokens_prompt += result.tokens_prompt
        self.tokens_completion += result.tokens_completion
        self.answered_by = f"{result.provider}:{result.model}"
        self.completions.append(
            {
                "messages": messages,
                "content": result.content,
                "model": result.model,
                "system_fingerprint": str(result.raw.get("system_fingerprint") or ""),
            }
        )
        return Response(
            id=None,
            model=result.model,
            message=Message.assistant([TextPart(result.content)]),
            finish_reason="stop",
            usage=Usage(input_tokens=result.tokens_prompt, output_tokens=result.tokens_completion),
        )

    def stream(self, request: Any) -> Iterator[Any]:
        return iter(response_to_events(self.complete(request)))

    def close(self) -> None:
        return None


def provider_lm(engine: ProviderEngine) -> Any:
    """A `dspy.LM` that answers through `engine` (no DSPy cache, no DSPy retries)."""
    return dspy.LM(
        f"torghut/{engine.model}",
        engine=engine,
        cache=False,
        num_retries=0,
        temperature=engine.temperature,
        max_tokens=engine.max_tokens,
    )
