"""eval: a compiled artifact measured on the evaluation split against the metric policy."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from django.utils import timezone

from trading.llm.dspy import artifacts
from trading.llm.dspy.agentrun import IMPLEMENTATION_SPEC_BY_LANE
from trading.llm.dspy.runtime import load_program_state
from trading.models import LLMDspyWorkflowArtifact
from trading.models.llm import DspyArtifactStatus, DspyLane
from trading.services.dspy_lanes.common import (
    compile_row,
    dataset_load,
    lane_lm,
    prediction_verdict,
    recorded,
    review_input,
    store_json,
    upsert,
)
from trading.services.dspy_lanes.cutoff import examples_after_cutoff, lane_model


def _p95(values: list[int]) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def dspy_evaluate(
    *,
    artifact_hash: str,
    split: str = "eval",
    policy_ref: str | None = None,
    lm: Any | None = None,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    from trading.llm.dspy.program import program_for

    row = compile_row(artifact_hash)
    program = program_for(row.program_name, row.signature_version)
    program.load_state(load_program_state(row))
    policy = artifacts.load_metrics_policy(policy_ref)
    data = dataset_load(row.dataset_hash)
    examples, window = examples_after_cutoff(
        [e for e in data["examples"] if split == "all" or e["split"] == split], model=lane_model()
    )
    metrics = _examples_measure(program, examples, artifact_hash=artifact_hash, lm=lm)
    report = artifacts.eval_report(
        artifact_hash=artifact_hash,
        dataset_hash=row.dataset_hash,
        metrics=metrics,
        policy=policy,
        window=window,
        created_at=now or timezone.now(),
    )
    if (done := recorded(f"eval:{report['evalHash']}")) is not None:
        return done
    key = f"dspy/artifacts/{artifact_hash}/evals/{report['evalHash']}/{artifacts.EVAL_FILE}"
    uri, file_hash = store_json(key, report)
    return upsert(
        f"eval:{report['evalHash']}",
        lane=DspyLane.EVAL,
        status=DspyArtifactStatus.EVALUATED,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["eval"],
        program_name=row.program_name,
        signature_version=row.signature_version,
        optimizer=row.optimizer,
        artifact_uri=uri,
        object_key=key,
        artifact_hash=artifact_hash,
        dataset_hash=row.dataset_hash,
        compiled_prompt_hash=row.compiled_prompt_hash,
        reproducibility_hash=row.reproducibility_hash,
        eval_hash=report["evalHash"],
        file_hash=file_hash,
        gate_compatibility=report["gateCompatibility"],
        promotion_recommendation=report["promotionRecommendation"],
        metric_bundle={
            k: report[k]
            for k in ("schemaValidRate", "vetoAlignmentRate", "falseVetoRate", "latencyP95Ms")
        }
        | report["metricBundle"]
        | {"window": window},
        metadata={"split": split, "compile_run_key": row.run_key},
    )


def _examples_measure(
    program: Any, examples: list[dict[str, Any]], *, artifact_hash: str, lm: Any | None
) -> artifacts.EvalMetrics:
    """Run the program over the examples and measure it against their labels."""
    import dspy

    from trading.llm.dspy.program import program_inputs

    valid = aligned = vetoed_approvals = errors = 0
    latencies: list[int] = []
    with dspy.context(lm=lane_lm(lm)):
        for example in examples:
            inputs = program_inputs(
                review_input(example, program=program, artifact_hash=artifact_hash)
            )
            started = time.perf_counter()
            try:
                verdict = prediction_verdict(program(**inputs))
            except Exception:  # noqa: BLE001 - a failed call is a fallback at run time
                errors += 1
                verdict = None
            latencies.append(int((time.perf_counter() - started) * 1000))
            label = example["label"]["verdict"]
            valid += verdict is not None
            aligned += verdict is not None and (verdict == "veto") == (label == "veto")
            vetoed_approvals += verdict == "veto" and label == "approve"
    n = len(examples)
    approvals = sum(1 for e in examples if e["label"]["verdict"] == "approve")
    metrics = artifacts.EvalMetrics(
        examples=n,
        schema_valid_rate=valid / n if n else 0.0,
        veto_alignment_rate=aligned / n if n else 0.0,
        baseline_veto_alignment_rate=approvals / n if n else 0.0,
        false_veto_rate=vetoed_approvals / approvals if approvals else 0.0,
        fallback_rate=errors / n if n else 0.0,
        latency_p95_ms=_p95(latencies),
    )
    return metrics
