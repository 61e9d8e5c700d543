"""The LLM provider adapter: OpenAI-compatible chat completions over `requests`.

The only module that talks to an LLM. Three endpoints speak the same protocol:
- `openai`: `OPENAI_BASE_URL` + `/chat/completions`, bearer `OPENAI_API_KEY`;
- `jangar`: `JANGAR_BASE_URL` + `/openai/v1/chat/completions`, bearer `JANGAR_API_KEY`, header
  `x-trade-execution: torghut`;
- `self_hosted`: `LLM_SELF_HOSTED_BASE_URL` + `/chat/completions`, bearer
  `LLM_SELF_HOSTED_API_KEY` ("local" when unset). It is the primary with
  `LLM_PROVIDER=self_hosted` and otherwise the fallback once the primary failed.

Every call has an explicit timeout, bounded by the caller's deadline. There are no retries here:
a review has one deadline, and a failure is the circuit breaker's and the fail mode's business.
Errors are classified (`LLMProviderError.kind`): timeout, connection, http_<status>,
invalid_response, not_configured, deadline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings


class LLMProviderError(Exception):
    def __init__(self, kind: str, detail: str, *, provider: str = "") -> None:
        super().__init__(f"{provider or 'llm'} {kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.provider = provider


@dataclass(frozen=True)
class Endpoint:
    name: str  # openai | jangar | self_hosted
    url: str
    model: str
    headers: dict[str, str]


@dataclass(frozen=True)
class ChatResult:
    content: str
    provider: str
    model: str
    tokens_prompt: int
    tokens_completion: int
    latency_ms: int
    errors: tuple[str, ...] = ()  # what failed before this answer (primary -> fallback)
    raw: dict[str, Any] = field(default_factory=dict)


def _self_hosted(model: str | None = None) -> Endpoint | None:
    base = settings.LLM_SELF_HOSTED_BASE_URL
    if not base:
        return None
    return Endpoint(
        name="self_hosted",
        url=f"{base}/chat/completions",
        model=model or settings.LLM_SELF_HOSTED_MODEL or settings.LLM_MODEL,
        headers={"Authorization": f"Bearer {settings.LLM_SELF_HOSTED_API_KEY or 'local'}"},
    )


def endpoints(*, provider: str, model: str) -> list[Endpoint]:
    """The primary endpoint for `provider`, then the self-hosted fallback if configured."""
    chain: list[Endpoint] = []
    if provider == "openai":
        headers = {"Authorization": f"Bearer {settings.OPENAI_API_KEY}"}
        chain.append(
            Endpoint("openai", f"{settings.OPENAI_BASE_URL}/chat/completions", model, headers)
        )
    elif provider == "jangar" and settings.JANGAR_BASE_URL:
        headers = {"x-trade-execution": "torghut"}
        if settings.JANGAR_API_KEY:
            headers["Authorization"] = f"Bearer {settings.JANGAR_API_KEY}"
        url = f"{settings.JANGAR_BASE_URL}/openai/v1/chat/completions"
        chain.append(Endpoint("jangar", url, model, headers))
    elif provider == "self_hosted":
        primary = _self_hosted(model)
        if primary is not None:
            chain.append(primary)
    if provider != "self_hosted":
        fallback = _self_hosted()
        if fallback is not None:
            chain.append(fallback)
    return chain


def _post(
    session: requests.Session,
    endpoint: Endpoint,
    body: dict[str, Any],
    timeout: float,
) -> dict[str, Any]:
    try:
        response = session.post(
            endpoint.url,
            json=body,
            headers={"Content-Type": "application/json", **endpoint.headers},
            timeout=timeout,
        )
    except requests.Timeout as exc:
        raise LLMProviderError(
            "timeout", f"no answer within {timeout:.2f}s", provider=endpoint.name
        ) from exc
    except requests.RequestException as exc:
        raise LLMProviderError("connection", type(exc).__name__, provider=endpoint.name) from exc
    with response:
        if response.status_code != 200:
            raise LLMProviderError(
                f"http_{response.status_code}", response.text[:200], provider=endpoint.name
            )
        try:
            payload = response.json()
        except ValueError as exc:
            raise LLMProviderError(
                "invalid_response", "body is not JSON", provider=endpoint.name
            ) from exc
    if not isinstance(payload, dict):
        raise LLMProviderError("invalid_response", "body is not an object", provider=endpoint.name)
    return payload


def _content(payload: dict[str, Any], provider: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMProviderError(
            "invalid_response", "no choices[0].message.content", provider=provider
        ) from exc
    if not isinstance(content, str):
        raise LLMProviderError("invalid_response", "content is not text", provider=provider)
    return content


def _tokens(payload: dict[str, Any]) -> tuple[int, int]:
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) and prompt >= 0 else 0,
        completion if isinstance(completion, int) and completion >= 0 else 0,
    )


def chat_complete(
    *,
    messages: Sequence[dict[str, str]],
    provider: str,
    model: str,
    temperature: float,
    max_tokens: int,
    seed: int | None,
    timeout_seconds: float,
    deadline: float | None = None,
    json_mode: bool = True,
    session: requests.Session | None = None,
) -> ChatResult:
    """One chat completion from the first endpoint that answers.

    `deadline` is a `time.monotonic()` instant no call may outlive; each HTTP call's timeout is
    the smaller of `timeout_seconds` and what is left of it.
    """
    chain = endpoints(provider=provider, model=model)
    if not chain:
        raise LLMProviderError("not_configured", f"no endpoint for provider {provider!r}")
    http = session or requests.Session()
    errors: list[str] = []
    last: LLMProviderError | None = None
    started = time.monotonic()
    try:
        for endpoint in chain:
            body: dict[str, Any] = {
                "model": endpoint.model,
                "messages": list(messages),
                "temperature": temperature,
                "max_tokens": max_tokens,
                "stream": False,
            }
            if seed is not None:
                body["seed"] = seed
            if json_mode:
                body["response_format"] = {"type": "json_object"}
            attempts = [body]
            if json_mode and endpoint.name == "self_hosted":
                # some OpenAI-compatible servers refuse response_format: ask again without it
                attempts.append({k: v for k, v in body.items() if k != "response_format"})
            for attempt in attempts:
                remaining = timeout_seconds if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    raise LLMProviderError(
                        "deadline", "review deadline reached", provider=endpoint.name
                    )
                try:
                    payload = _post(http, endpoint, attempt, min(timeout_seconds, remaining))
                    content = _content(payload, endpoint.name)
                except LLMProviderError as exc:
                    errors.append(str(exc))
                    last = exc
                    if exc.kind == "http_400" and attempt is not attempts[-1]:
                        continue
                    break
                prompt_tokens, completion_tokens = _tokens(payload)
                return ChatResult(
                    content=content,
                    provider=endpoint.name,
                    model=str(payload.get("model") or endpoint.model),
                    tokens_prompt=prompt_tokens,
                    tokens_completion=completion_tokens,
                    latency_ms=int((time.monotonic() - started) * 1000),
                    errors=tuple(errors),
                    raw={
                        k: v
                        for k, v in payload.items()
                        if k in ("id", "model", "usage", "system_fingerprint")
                    },
                )
    finally:
        if session is None:
            http.close()
    assert last is not None
    raise last
