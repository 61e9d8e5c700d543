"""`build_dspy_agentrun_payload`: a DSPy lane as a Codex AgentRun on Jangar (`/v1/agent-runs`).

Rules (docs/compatibility.md#dspy-contract), each refusal a `ValueError` whose message is its code:
- a non-empty idempotency key (`idempotency_key_required`), sent in the body and, by the caller,
  as the `Idempotency-Key` header;
- `implementationSpecRef.name` from the lane catalog (`unknown_lane:<lane>`);
- `agentRef` default `codex-agent`; `runtime.type` `job`; `vcsRef` `github`;
  `vcsPolicy` `{required: true, mode: "read-write"}`; namespace `agents`;
- `parameters` must include non-empty repository, base, head (`repository_base_head_required`)
  and artifactPath (`artifact_path_required`); overrides must be non-null
  (`parameter_<key>_must_be_non_null`), scalar (`parameter_<key>_must_be_string_coercible_scalar`)
  and non-empty (`parameter_<key>_must_be_non_empty`), and are sent as strings;
- `policy.secretBindingRef` default LLM_DSPY_SECRET_BINDING_REF (`codex-whitepaper-github-token`);
- top-level `ttlSecondsAfterFinished` default LLM_DSPY_AGENTRUN_TTL_SECONDS (14400), an integer
  ≥ 0 (`ttl_seconds_after_finished_must_be_non_negative_integer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IMPLEMENTATION_SPEC_BY_LANE: dict[str, str] = {
    "dataset-build": "torghut-dspy-dataset-build-v1",
    "compile": "torghut-dspy-compile-mipro-v1",
    "eval": "torghut-dspy-eval-v1",
    "gepa-experiment": "torghut-dspy-gepa-experiment-v1",
    "promote": "torghut-dspy-promote-artifact-v1",
}
DEFAULT_AGENT_NAME = "codex-agent"


def _parameter(key: str, value: Any) -> str:
    if value is None:
        raise ValueError(f"parameter_{key}_must_be_non_null")
    if isinstance(value, Mapping | list | tuple | set | frozenset | bytes):
        # a ValueError like every other refusal: callers map one exception to one error code
        raise ValueError(f"parameter_{key}_must_be_string_coercible_scalar")  # noqa: TRY004
    text = str(value).strip()
    if not text:
        raise ValueError(f"parameter_{key}_must_be_non_empty")
    return text


def build_dspy_agentrun_payload(
    *,
    lane: str,
    idempotency_key: str,
    repository: str,
    base: str,
    head: str,
    artifact_path: str,
    parameter_overrides: Mapping[str, Any] | None = None,
    namespace: str = "agents",
    agent_name: str = DEFAULT_AGENT_NAME,
    vcs_ref_name: str = "github",
    secret_binding_ref: str = "codex-whitepaper-github-token",  # noqa: S107 (a secret's name)
    ttl_seconds_after_finished: int = 14_400,
) -> dict[str, Any]:
    key = (idempotency_key or "").strip()
    if not key:
        raise ValueError("idempotency_key_required")
    spec = IMPLEMENTATION_SPEC_BY_LANE.get(lane)
    if spec is None:
        raise ValueError(f"unknown_lane:{lane}")
    parameters = {
        "repository": (repository or "").strip(),
        "base": (base or "").strip(),
        "head": (head or "").strip(),
        "artifactPath": (artifact_path or "").strip(),
    }
    if not (parameters["repository"] and parameters["base"] and parameters["head"]):
        raise ValueError("repository_base_head_required")
    if not parameters["artifactPath"]:
        raise ValueError("artifact_path_required")
    for raw_key, value in (parameter_overrides or {}).items():
        name = str(raw_key).strip()
        if name:
            parameters[name] = _parameter(name, value)
    if (
        isinstance(ttl_seconds_after_finished, bool)
        or not isinstance(ttl_seconds_after_finished, int)
        or ttl_seconds_after_finished < 0
    ):
        raise ValueError("ttl_seconds_after_finished_must_be_non_negative_integer")
    return {
        "namespace": namespace.strip() or "agents",
        "idempotencyKey": key,
        "agentRef": {"name": agent_name.strip() or DEFAULT_AGENT_NAME},
        "implementationSpecRef": {"name": spec},
        "runtime": {"type": "job"},
        "vcsRef": {"name": vcs_ref_name.strip() or "github"},
        "vcsPolicy": {"required": True, "mode": "read-write"},
        "parameters": parameters,
        "policy": {
            "secretBindingRef": secret_binding_ref.strip() or "codex-whitepaper-github-token"
        },
        "ttlSecondsAfterFinished": ttl_seconds_after_finished,
    }
