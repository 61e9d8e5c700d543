"""The DSPy lanes' artifacts (docs/compatibility.md#dspy-contract) as canonical JSON, their hashes,
and the metric policy gate.

Files: `dspy-dataset.json`, `dspy-compile-result.json`, `dspy-eval-report.json`,
`dspy-promotion-record.json`, `dspy-bundle.json`. Encoding and hashing are
`torghut_site.hashing.canonical_bytes`/`canonical_bytes_hash` (sorted keys, compact, floats
rounded to 10 significant digits), so the same inputs give the same bytes and the same hashes.

What each hash covers (never `createdAt`):
- datasetHash: the labelling rule and the examples;
- compiledPromptHash: the compiled program's state (instructions and demos);
- reproducibilityHash: program, signature versions, optimizer, dataset, compiled prompt, seed,
  compile metrics;
- artifactHash: program, signature versions, optimizer, dataset, compiled prompt, the stored
  program's URI, reproducibility hash;
- evalHash: artifact, dataset, the window evaluated (with the model and its training cutoff), the
  rates, the gate results and the recommendation. The observed
  p95 latency is reported and gated but not hashed: wall time does not reproduce;
- promotionHash: artifact, eval, target, approval, approval token reference, approver;
- manifestHash (bundle): the hashes of the other files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from torghut_site.hashing import canonical_bytes, canonical_bytes_hash

DATASET_SCHEMA = "torghut.dspy.dataset.v1"
METRICS_SCHEMA = "torghut.dspy.metrics.v1"
COMPILE_FILE = "dspy-compile-result.json"
EVAL_FILE = "dspy-eval-report.json"
PROMOTION_FILE = "dspy-promotion-record.json"
BUNDLE_FILE = "dspy-bundle.json"
DATASET_FILE = "dspy-dataset.json"
PROMOTION_TARGETS = ("paper", "shadow", "constrained_live", "scaled_live")
RECOMMENDATIONS = ("hold", *PROMOTION_TARGETS)


def file_bytes(payload: dict[str, Any]) -> bytes:
    return canonical_bytes(payload)


def dataset_hash(*, labeling: dict[str, Any], examples: list[dict[str, Any]]) -> str:
    return canonical_bytes_hash(
        {"schemaVersion": DATASET_SCHEMA, "labeling": labeling, "examples": examples}
    )


def compile_result(
    *,
    program_name: str,
    signature_versions: dict[str, str],
    optimizer: str,
    dataset_hash: str,
    metric_bundle: dict[str, Any],
    program_state: dict[str, Any],
    compiled_artifact_uri: str,
    seed: int,
    created_at: datetime,
) -> dict[str, Any]:
    compiled_prompt_hash = canonical_bytes_hash(program_state)
    reproducibility_hash = canonical_bytes_hash(
        {
            "program_name": program_name,
            "signature_versions": signature_versions,
            "optimizer": optimizer,
            "dataset_hash": dataset_hash,
            "compiled_prompt_hash": compiled_prompt_hash,
            "seed": seed,
            "metric_bundle": metric_bundle,
        }
    )
    artifact_hash = canonical_bytes_hash(
        {
            "program_name": program_name,
            "signature_versions": signature_versions,
            "optimizer": optimizer,
            "dataset_hash": dataset_hash,
            "compiled_prompt_hash": compiled_prompt_hash,
            "compiled_artifact_uri": compiled_artifact_uri,
            "reproducibility_hash": reproducibility_hash,
        }
    )
    return {
        "programName": program_name,
        "signatureVersions": signature_versions,
        "optimizer": optimizer,
        "seed": seed,
        "datasetHash": dataset_hash,
        "metricBundle": metric_bundle,
        "compiledPromptHash": compiled_prompt_hash,
        "compiledArtifactUri": compiled_artifact_uri,
        "artifactHash": artifact_hash,
        "reproducibilityHash": reproducibility_hash,
        "createdAt": created_at.isoformat(),
    }


@dataclass(frozen=True)
class EvalMetrics:
    examples: int
    schema_valid_rate: float
    veto_alignment_rate: float
    baseline_veto_alignment_rate: float
    false_veto_rate: float
    fallback_rate: float
    latency_p95_ms: int


def load_metrics_policy(ref: str | None = None) -> dict[str, Any]:
    path = Path(ref or settings.LLM_DSPY_COMPILE_METRICS_POLICY_REF)
    if not path.is_absolute():
        path = Path(settings.BASE_DIR) / path
    policy = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(policy, dict) or policy.get("schemaVersion") != METRICS_SCHEMA:
        raise ValueError(f"{path} is not a {METRICS_SCHEMA} metric policy")
    return policy


def gate_results(metrics: EvalMetrics, policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each threshold of the policy against the observed metric; no examples fails them all."""
    gates = policy["gates"]
    observed = metrics.examples > 0
    delta = metrics.veto_alignment_rate - metrics.baseline_veto_alignment_rate
    checks = {
        "schemaValidRate": (
            metrics.schema_valid_rate,
            ">=",
            gates["schemaValidRateMin"],
            metrics.schema_valid_rate >= gates["schemaValidRateMin"],
        ),
        "vetoAlignmentRateDelta": (
            round(delta, 10),
            ">=",
            gates["vetoAlignmentRateMinDelta"],
            delta >= gates["vetoAlignmentRateMinDelta"],
        ),
        "falseVetoRate": (
            metrics.false_veto_rate,
            "<=",
            gates["falseVetoRateMax"],
            metrics.false_veto_rate <= gates["falseVetoRateMax"],
        ),
        "latencyP95Ms": (
            metrics.latency_p95_ms,
            "<=",
            gates["latencyP95MsMax"],
            metrics.latency_p95_ms <= gates["latencyP95MsMax"],
        ),
    }
    return {
        name: {"observed": value, "op": op, "threshold": threshold, "pass": observed and ok}
        for name, (value, op, threshold, ok) in checks.items()
    }


def eval_report(
    *,
    artifact_hash: str,
    dataset_hash: str,
    metrics: EvalMetrics,
    policy: dict[str, Any],
    created_at: datetime,
    window: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The evaluation report; `window` is the span of decisions evaluated and the training cutoff
    of the model that answered (trading/services/dspy_lanes/cutoff.py)."""
    gates = gate_results(metrics, policy)
    required = policy["gates"].get("gateCompatibilityRequired", "pass")
    compatibility = "pass" if all(g["pass"] for g in gates.values()) else "fail"
    promotion = policy["promotion"]
    recommendation = (
        promotion.get("recommendationOnPass", "shadow")
        if compatibility == required == "pass"
        else promotion.get("defaultRecommendation", "hold")
    )
    metric_bundle = {
        "examples": metrics.examples,
        "baselineVetoAlignmentRate": metrics.baseline_veto_alignment_rate,
        "fallbackRate": metrics.fallback_rate,
        "gates": gates,
        "policySchemaVersion": policy["schemaVersion"],
    }
    hashed = {
        "artifact_hash": artifact_hash,
        "dataset_hash": dataset_hash,
        "schema_valid_rate": metrics.schema_valid_rate,
        "veto_alignment_rate": metrics.veto_alignment_rate,
        "false_veto_rate": metrics.false_veto_rate,
        "gate_compatibility": compatibility,
        "promotion_recommendation": recommendation,
        "metric_bundle": {k: v for k, v in metric_bundle.items() if k != "gates"}
        | {"gates": {k: g["pass"] for k, g in gates.items()}},
    }
    if window is not None:
        hashed["window"] = window
    return {
        "artifactHash": artifact_hash,
        "datasetHash": dataset_hash,
        "schemaValidRate": metrics.schema_valid_rate,
        "vetoAlignmentRate": metrics.veto_alignment_rate,
        "falseVetoRate": metrics.false_veto_rate,
        "latencyP95Ms": metrics.latency_p95_ms,
        "gateCompatibility": compatibility,
        "promotionRecommendation": recommendation,
        "metricBundle": metric_bundle,
        "window": window,
        "evalHash": canonical_bytes_hash(hashed),
        "createdAt": created_at.isoformat(),
    }


def promotion_record(
    *,
    artifact_hash: str,
    eval_hash: str,
    promotion_target: str,
    approval_token_ref: str,
    promoted_by: str,
    created_at: datetime,
) -> dict[str, Any]:
    promotion_hash = canonical_bytes_hash(
        {
            "artifact_hash": artifact_hash,
            "eval_hash": eval_hash,
            "promotion_target": promotion_target,
            "approved": True,
            "approval_token_ref": approval_token_ref,
            "promoted_by": promoted_by,
        }
    )
    return {
        "artifactHash": artifact_hash,
        "evalHash": eval_hash,
        "promotionTarget": promotion_target,
        "approved": True,
        "approvalTokenRef": approval_token_ref,
        "promotedBy": promoted_by,
        "promotionHash": promotion_hash,
        "createdAt": created_at.isoformat(),
    }


def bundle(
    *,
    compile_result: dict[str, Any],
    eval_report: dict[str, Any],
    promotion_record: dict[str, Any] | None,
) -> dict[str, Any]:
    hashes = {
        "compile_result": canonical_bytes_hash(compile_result),
        "eval_report": canonical_bytes_hash(eval_report),
    }
    if promotion_record is not None:
        hashes["promotion_record"] = canonical_bytes_hash(promotion_record)
    return {
        "compileResult": compile_result,
        "evalReport": eval_report,
        "promotionRecord": promotion_record,
        "artifactHashes": hashes,
        "manifestHash": canonical_bytes_hash(hashes),
    }
