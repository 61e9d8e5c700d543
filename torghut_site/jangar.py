"""Jangar adapter: submit a Codex AgentRun (`POST /v1/agent-runs`), for the whitepaper workflow
and the DSPy lanes.

Every submit carries an `Idempotency-Key`; Jangar answers a repeated key with the AgentRun it
already created, so a retry after a timeout or a 5xx can never start a second agent. Timeouts,
connection errors, 429 and 5xx are retried with exponential backoff and full jitter; any other
4xx, or an answer without `resource.metadata.name`, is terminal.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

logger = logging.getLogger(__name__)


class JangarError(Exception):
    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


@dataclass(frozen=True)
class SubmittedAgentRun:
    name: str
    uid: str
    phase: str
    response: dict[str, Any]
    http_attempts: int
    errors: list[str] = field(default_factory=list)


def _parse(body: Any) -> tuple[str, str, str]:
    resource = body.get("resource") if isinstance(body, dict) else None
    metadata = resource.get("metadata") if isinstance(resource, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise JangarError("response has no resource.metadata.name", retryable=False)
    uid = metadata.get("uid") if isinstance(metadata, dict) else None
    status = resource.get("status") if isinstance(resource, dict) else None
    phase = status.get("phase") if isinstance(status, dict) else None
    return name, str(uid or ""), str(phase or "queued").lower()


def _submit_once(
    session: requests.Session,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout: float,
) -> dict[str, Any]:
    try:
        response = session.post(url, json=payload, headers=dict(headers), timeout=timeout)
    except requests.Timeout as exc:
        raise JangarError(f"timeout after {timeout:g}s: {exc}", retryable=True) from exc
    except requests.ConnectionError as exc:
        raise JangarError(f"connection error: {exc}", retryable=True) from exc
    with response:
        code = response.status_code
        if code == 429 or code >= 500:
            raise JangarError(
                f"HTTP {code}: {response.text[:300]}", retryable=True, status_code=code
            )
        if code >= 400:
            raise JangarError(
                f"HTTP {code}: {response.text[:300]}", retryable=False, status_code=code
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise JangarError(f"HTTP {code} with a non-JSON body", retryable=False) from exc
    return body if isinstance(body, dict) else {"body": body}


def agentrun_submit(
    *,
    url: str,
    payload: Mapping[str, Any],
    idempotency_key: str,
    api_key: str = "",
    timeout_seconds: float = 20.0,
    max_attempts: int = 4,
    backoff_seconds: float = 1.0,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SubmittedAgentRun:
    headers = {"Idempotency-Key": idempotency_key, "Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    http = session or requests.Session()
    errors: list[str] = []
    try:
        for attempt in range(1, max_attempts + 1):
            try:
                body = _submit_once(http, url, payload, headers, timeout_seconds)
                name, uid, phase = _parse(body)
                return SubmittedAgentRun(name, uid, phase, body, attempt, errors)
            except JangarError as exc:
                errors.append(str(exc))
                if not exc.retryable or attempt == max_attempts:
                    raise
                delay = random.uniform(0, backoff_seconds * 2 ** (attempt - 1))  # noqa: S311 (jitter)
                logger.warning(
                    "agentrun submit failed (attempt %d/%d, retry in %.2fs): %s",
                    attempt,
                    max_attempts,
                    delay,
                    exc,
                )
                sleep(delay)
    finally:
        if session is None:
            http.close()
    raise AssertionError("unreachable")  # pragma: no cover
