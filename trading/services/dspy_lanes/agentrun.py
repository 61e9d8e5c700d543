"""A lane as a Codex AgentRun on Jangar, submitted with its Idempotency-Key."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from torghut_site.jangar import JangarError, agentrun_submit
from trading.llm.dspy import artifacts
from trading.llm.dspy.agentrun import build_dspy_agentrun_payload
from trading.models import LLMDspyWorkflowArtifact
from trading.models.llm import DspyArtifactStatus
from trading.services.dspy_lanes.common import (
    DspyLaneError,
    upsert,
)


def dspy_agentrun_submit(
    *,
    lane: str,
    idempotency_key: str,
    repository: str,
    base: str,
    head: str,
    artifact_path: str,
    parameter_overrides: dict[str, Any] | None = None,
    policy_ref: str | None = None,
) -> LLMDspyWorkflowArtifact:
    """Submit a lane to Jangar `/v1/agent-runs` with `Idempotency-Key`; the same key answers
    with the same AgentRun and updates the same row."""
    agentrun = artifacts.load_metrics_policy(policy_ref).get("agentrun", {})
    payload = build_dspy_agentrun_payload(
        lane=lane,
        idempotency_key=idempotency_key,
        repository=repository,
        base=base,
        head=head,
        artifact_path=artifact_path,
        parameter_overrides=parameter_overrides,
        namespace=str(agentrun.get("namespace", "agents")),
        agent_name=str(agentrun.get("agentRefName", "codex-agent")),
        vcs_ref_name=str(agentrun.get("vcsRefName", "github")),
        secret_binding_ref=settings.LLM_DSPY_SECRET_BINDING_REF,
        ttl_seconds_after_finished=settings.LLM_DSPY_AGENTRUN_TTL_SECONDS,
    )
    key = payload["idempotencyKey"]
    url = (settings.JANGAR_BASE_URL or "http://agents.agents.svc.cluster.local") + "/v1/agent-runs"
    common = {
        "lane": lane,
        "implementation_spec_ref": payload["implementationSpecRef"]["name"],
        "idempotency_key": key,
        "request_payload": payload,
    }
    try:
        # the same submit budget as the whitepaper AgentRuns (timeouts, 429 and 5xx retried)
        submitted = agentrun_submit(
            url=url,
            payload=payload,
            idempotency_key=key,
            api_key=settings.JANGAR_API_KEY,
            timeout_seconds=settings.WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS,
            max_attempts=settings.WHITEPAPER_AGENTRUN_MAX_ATTEMPTS,
            backoff_seconds=settings.WHITEPAPER_AGENTRUN_BACKOFF_SECONDS,
        )
    except JangarError as exc:
        upsert(
            f"agentrun:{key}",
            status=DspyArtifactStatus.FAILED,
            metadata={"error": str(exc), "status_code": exc.status_code},
            **common,
        )
        raise DspyLaneError("agentrun_submit_failed", str(exc)) from exc
    metadata = submitted.response.get("resource", {}).get("metadata", {})
    return upsert(
        f"agentrun:{key}",
        status=DspyArtifactStatus.SUBMITTED,
        agentrun_name=submitted.name,
        agentrun_namespace=str(metadata.get("namespace") or payload["namespace"]),
        agentrun_uid=submitted.uid,
        response_payload=submitted.response,
        metadata={"phase": submitted.phase, "http_attempts": submitted.http_attempts},
        **common,
    )
