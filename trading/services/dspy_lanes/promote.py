"""promote: an approved promotion of an artifact whose evaluation passed the policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from trading.llm.dspy import artifacts
from trading.llm.dspy.agentrun import IMPLEMENTATION_SPEC_BY_LANE
from trading.models import LLMDspyWorkflowArtifact
from trading.models.llm import DspyArtifactStatus, DspyLane
from trading.services.dspy_lanes.common import (
    DspyLaneError,
    compile_row,
    load_json,
    store_json,
    upsert,
)
from trading.services.dspy_lanes.cutoff import lane_model, window_after_cutoff
from trading.services.stability import artifact_flip_rate

# targets an artifact may reach before any of its reviews was probed: shadow is where the
# probes of its reviews are measured (trading/services/stability.py)
UNPROBED_TARGETS = ("paper", "shadow")


def dspy_promote(
    *,
    artifact_hash: str,
    eval_hash: str,
    target: str,
    approver: Any,
    approval_token_ref: str,
    policy_ref: str | None = None,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    """Record an approved promotion of an evaluated artifact; refused unless its evaluation
    passed the metric policy, the target is allowed, a token reference is given and the approver
    may approve."""
    evaluation, token_ref = _promotion_allowed(
        artifact_hash=artifact_hash,
        eval_hash=eval_hash,
        target=target,
        approver=approver,
        approval_token_ref=approval_token_ref,
        policy_ref=policy_ref,
    )
    existing = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.PROMOTE,
        artifact_hash=artifact_hash,
        eval_hash=eval_hash,
        promotion_target=target,
    ).first()
    if existing is not None:
        return existing  # already promoted to this target: the first approval stands
    compiled = compile_row(artifact_hash)
    compile_result = load_json(compiled.object_key)
    report = load_json(evaluation.object_key)
    record = artifacts.promotion_record(
        artifact_hash=artifact_hash,
        eval_hash=eval_hash,
        promotion_target=target,
        approval_token_ref=token_ref,
        promoted_by=approver.get_username(),
        created_at=now or timezone.now(),
    )
    base = f"dspy/artifacts/{artifact_hash}/promotions/{record['promotionHash']}"
    uri, file_hash = store_json(f"{base}/{artifacts.PROMOTION_FILE}", record)
    manifest = artifacts.bundle(
        compile_result=compile_result, eval_report=report, promotion_record=record
    )
    bundle_uri, bundle_hash = store_json(f"{base}/{artifacts.BUNDLE_FILE}", manifest)
    return upsert(
        f"promote:{record['promotionHash']}",
        lane=DspyLane.PROMOTE,
        status=DspyArtifactStatus.PROMOTED,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["promote"],
        program_name=compiled.program_name,
        signature_version=compiled.signature_version,
        optimizer=compiled.optimizer,
        artifact_uri=uri,
        object_key=f"{base}/{artifacts.PROMOTION_FILE}",
        artifact_hash=artifact_hash,
        dataset_hash=compiled.dataset_hash,
        compiled_prompt_hash=compiled.compiled_prompt_hash,
        reproducibility_hash=compiled.reproducibility_hash,
        eval_hash=eval_hash,
        promotion_hash=record["promotionHash"],
        file_hash=file_hash,
        gate_compatibility=evaluation.gate_compatibility,
        promotion_recommendation=evaluation.promotion_recommendation,
        promotion_target=target,
        approved_by=approver,
        approval_token_ref=token_ref,
        metric_bundle={"manifestHash": manifest["manifestHash"], **manifest["artifactHashes"]},
        metadata={
            "bundle_key": f"{base}/{artifacts.BUNDLE_FILE}",
            "bundle_uri": bundle_uri,
            "bundle_file_hash": bundle_hash,
        },
    )


def _promotion_allowed(
    *,
    artifact_hash: str,
    eval_hash: str,
    target: str,
    approver: Any,
    approval_token_ref: str,
    policy_ref: str | None,
) -> tuple[LLMDspyWorkflowArtifact, str]:
    """The passed evaluation and the approval's token reference, or the refusal's
    `DspyLaneError`, checked in this order: evaluation known, evaluation passed, its window after
    the running model's training cutoff, target allowed, token given, approver permitted."""
    policy = artifacts.load_metrics_policy(policy_ref)["promotion"]
    evaluation = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.EVAL, eval_hash=eval_hash, artifact_hash=artifact_hash
    ).first()
    if evaluation is None:
        raise DspyLaneError("eval_unknown", f"no evaluation {eval_hash} of {artifact_hash}")
    if evaluation.gate_compatibility != "pass":
        raise DspyLaneError("eval_gate_failed", f"evaluation {eval_hash} did not pass the policy")
    # leak-free: the model that will run the program never saw the evaluated decisions
    window_after_cutoff(
        evaluation.metric_bundle.get("window"), model=lane_model(), eval_hash=eval_hash
    )
    if target not in policy.get("allowedTargets", artifacts.PROMOTION_TARGETS):
        raise DspyLaneError("promotion_target_not_allowed", target)
    _stability_allowed(artifact_hash, target)
    token_ref = (approval_token_ref or "").strip()
    if policy.get("requireApprovalToken", True) and not token_ref:
        raise DspyLaneError("approval_token_required", "give the approval's reference")
    if not (
        approver is not None
        and approver.is_active
        and approver.has_perm("trading.change_llmdspyworkflowartifact")
    ):
        raise DspyLaneError("approver_not_authorized", f"{approver} may not promote DSPy artifacts")
    return evaluation, token_ref


def _stability_allowed(artifact_hash: str, target: str) -> None:
    """Refuse when the artifact's probed reviews flipped verdicts more often than
    LLM_STABILITY_MAX_FLIP_RATE, or, for a target beyond shadow, when none was probed."""
    measured = artifact_flip_rate(artifact_hash)
    if measured.probes == 0:
        if target in UNPROBED_TARGETS:
            return
        raise DspyLaneError(
            "stability_probes_missing",
            f"no stability probe of a review run with {artifact_hash}: run it in shadow with "
            "LLM_STABILITY_PROBE_SHARE > 0 first",
        )
    if measured.rate > settings.LLM_STABILITY_MAX_FLIP_RATE:
        raise DspyLaneError(
            "stability_flip_rate_exceeded",
            f"{measured.flips} of {measured.probes} probes flipped ({measured.rate:.4f} > "
            f"{settings.LLM_STABILITY_MAX_FLIP_RATE})",
        )
