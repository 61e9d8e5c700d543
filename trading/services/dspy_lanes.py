"""The DSPy lanes: build a labelled dataset, compile, evaluate, promote, and submit a lane as an
AgentRun. Each lane stores its canonical JSON file in object storage (content-addressed keys) and
one `llm_dspy_workflow_artifacts` row keyed by `run_key`; running a lane again on the same inputs
finds the same hashes, the same keys and the same row.

Labels come from outcomes: a decision that passed the deterministic gates is labelled `veto` when
the symbol's next recorded price at least LABEL_HORIZON after the decision moved against the
trade by more than the threshold (markout, in basis points), else `approve`. Every fifth
decision (by its hash) goes to the evaluation split.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import time
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from autonomy.engine.artifacts import sha256_hex
from torghut_site.jangar import JangarError, agentrun_submit
from torghut_site.storage import object_get, object_put
from trading.llm import dspy_artifacts as artifacts
from trading.llm.config import ReviewConfig
from trading.llm.dspy_agentrun import IMPLEMENTATION_SPEC_BY_LANE, build_dspy_agentrun_payload
from trading.llm.dspy_runtime import load_program_state
from trading.llm.request import decision_request_snapshot
from trading.llm.schema import DspyReviewInput, ReviewSchemaError
from trading.models import AccountLane, LLMDecisionReview, LLMDspyWorkflowArtifact, TradeDecision
from trading.models.llm import DspyArtifactStatus, DspyLane

DETERMINISTIC_GATES = ("universe", "sizing", "portfolio", "risk")
EVAL_EVERY = 5


class DspyLaneError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _store(key: str, payload: dict[str, Any]) -> tuple[str, str]:
    data = artifacts.file_bytes(payload)
    stored = object_put(key, data, content_type="application/json")
    return stored.uri, sha256_hex(data)


def _load(key: str) -> dict[str, Any]:
    return dict(json.loads(object_get(key)))


def _upsert(run_key: str, **fields: Any) -> LLMDspyWorkflowArtifact:
    row, _ = LLMDspyWorkflowArtifact.objects.update_or_create(run_key=run_key, defaults=fields)
    return row


# -- dataset-build -----------------------------------------------------------------------------


def _passed_deterministic_gates(decision: TradeDecision) -> bool:
    passed = {v.get("gate") for v in decision.gate_verdicts if v.get("passed")}
    return all(gate in passed for gate in DETERMINISTIC_GATES)


def dspy_dataset_build(
    *,
    account_labels: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    horizon_minutes: int = 30,
    veto_bps: Decimal = Decimal(10),
    limit: int = 5000,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    decisions = TradeDecision.objects.exclude(price__isnull=True).select_related("strategy")
    if account_labels:
        decisions = decisions.filter(account_label__in=account_labels)
    if since is not None:
        decisions = decisions.filter(event_ts__gte=since)
    if until is not None:
        decisions = decisions.filter(event_ts__lt=until)
    chosen = [
        d for d in decisions.order_by("event_ts", "pk")[:limit] if _passed_deterministic_gates(d)
    ]
    prices: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for symbol, ts, price in (
        TradeDecision.objects.filter(symbol__in={d.symbol for d in chosen}, price__isnull=False)
        .order_by("event_ts", "pk")
        .values_list("symbol", "event_ts", "price")
    ):
        if price is not None:
            prices[symbol].append((ts, price))
    reviewed = dict(
        LLMDecisionReview.objects.filter(decision__in=chosen).values_list(
            "decision_id", "input_json"
        )
    )
    live = set(AccountLane.objects.filter(mode="live").values_list("label", flat=True))
    config = ReviewConfig.current()
    horizon = timedelta(minutes=horizon_minutes)
    examples: list[dict[str, Any]] = []
    unlabelled = 0
    for decision in chosen:
        series = prices[decision.symbol]
        index = bisect.bisect_left([ts for ts, _ in series], decision.event_ts + horizon)
        if index >= len(series) or decision.price is None:
            unlabelled += 1
            continue
        exit_at, exit_price = series[index]
        direction = 1 if decision.action == "buy" else -1
        markout = direction * (exit_price - decision.price) / decision.price * Decimal(10000)
        snapshot = reviewed.get(decision.pk) or decision_request_snapshot(
            decision=decision, config=config, is_live=decision.account_label in live
        )
        examples.append(
            {
                "decisionId": decision.pk,
                "decisionHash": decision.decision_hash,
                "accountLabel": decision.account_label,
                "symbol": decision.symbol,
                "eventTs": decision.event_ts.isoformat(),
                "split": "eval"
                if int(decision.decision_hash[:8], 16) % EVAL_EVERY == 0
                else "train",
                "requestJson": snapshot,
                "label": {
                    "verdict": "veto" if markout < -veto_bps else "approve",
                    "markoutBps": str(markout.quantize(Decimal("0.01"))),
                    "exitPrice": str(exit_price),
                    "exitAt": exit_at.isoformat(),
                },
            }
        )
    labeling = {
        "rule": "markout",
        "horizonMinutes": horizon_minutes,
        "vetoBelowBps": str(veto_bps),
        "evalEvery": EVAL_EVERY,
        "priceSource": "trade_decisions.price",
    }
    digest = artifacts.dataset_hash(labeling=labeling, examples=examples)
    counts = {
        "examples": len(examples),
        "train": sum(1 for e in examples if e["split"] == "train"),
        "eval": sum(1 for e in examples if e["split"] == "eval"),
        "veto": sum(1 for e in examples if e["label"]["verdict"] == "veto"),
        "unlabelled": unlabelled,
    }
    payload = {
        "schemaVersion": artifacts.DATASET_SCHEMA,
        "labeling": labeling,
        "examples": examples,
        "datasetHash": digest,
        "counts": counts,
        "createdAt": (now or timezone.now()).isoformat(),
    }
    key = f"dspy/datasets/{digest}/{artifacts.DATASET_FILE}"
    uri, file_hash = _store(key, payload)
    return _upsert(
        f"dataset-build:{digest}",
        lane=DspyLane.DATASET_BUILD,
        status=DspyArtifactStatus.BUILT,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["dataset-build"],
        dataset_hash=digest,
        artifact_uri=uri,
        object_key=key,
        file_hash=file_hash,
        metric_bundle=counts,
        metadata={"labeling": labeling},
    )


def _dataset(dataset_hash: str) -> dict[str, Any]:
    row = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.DATASET_BUILD, dataset_hash=dataset_hash
    ).first()
    if row is None:
        raise DspyLaneError("dataset_unknown", f"no dataset {dataset_hash}")
    data = _load(row.object_key)
    if artifacts.dataset_hash(labeling=data["labeling"], examples=data["examples"]) != dataset_hash:
        raise DspyLaneError("dataset_tampered", f"{row.object_key} does not hash to {dataset_hash}")
    return data


# -- compile -----------------------------------------------------------------------------------


def _review_input(example: dict[str, Any], *, program: Any, artifact_hash: str) -> DspyReviewInput:
    from trading.llm.dspy_program import INPUT_SCHEMA_VERSION

    return DspyReviewInput.model_validate(
        {
            "schemaVersion": INPUT_SCHEMA_VERSION,
            "requestJson": example["requestJson"],
            "programName": program.program_name,
            "signatureVersion": program.signature_version,
            "artifactHash": artifact_hash,
            "marketSession": example["requestJson"].get("market_session"),
        }
    )


def labelled_fields(example: dict[str, Any]) -> dict[str, Any]:
    """The answer the label asks for, in the program's output fields (the demos' outputs)."""
    label = example["label"]
    verdict = label["verdict"]
    flags = ["adverse_markout"] if verdict == "veto" else []
    return {
        "verdict": verdict,
        "confidence": 0.8,
        "rationale": f"labelled {verdict}: markout {label['markoutBps']} bps after the decision",
        "rationale_short": verdict,
        "required_checks": ["risk_engine", "order_firewall", "execution_policy"],
        "risk_flags": flags,
        "adjusted_qty": "none",
        "adjusted_order_type": "none",
        "limit_price": "none",
        "escalate_reason": "none",
        "uncertainty_band": "medium",
        "committee": [
            {
                "role": role,
                "verdict": verdict,
                "confidence": 0.8,
                "uncertainty_band": "medium",
                "rationale_short": f"{role}: {verdict}",
                "required_checks": [],
                "risk_flags": flags,
            }
            for role in ("researcher", "risk_critic", "execution_critic", "policy_judge")
        ],
        "calibration_metadata": {"label_source": "markout"},
    }


def _prediction_verdict(prediction: Any) -> str | None:
    from trading.llm.dspy_program import prediction_output

    try:
        return prediction_output(prediction).verdict
    except ReviewSchemaError:
        return None


def _verdict_metric(example: Any, prediction: Any, trace: Any = None) -> bool:
    return bool(_prediction_verdict(prediction) == example.verdict)


def _lane_lm(lm: Any | None) -> Any:
    if lm is not None:
        return lm
    from trading.llm.dspy_lm import ProviderEngine, provider_lm

    config = ReviewConfig.current()
    return provider_lm(
        ProviderEngine(
            provider=config.provider,
            model=config.model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            seed=config.seed,
            timeout_seconds=config.timeout_seconds,
        )
    )


OPTIMIZERS = ("bootstrap-fewshot", "labeled-fewshot")


def dspy_compile(
    *,
    dataset_hash: str,
    optimizer: str = "bootstrap-fewshot",
    seed: int = 0,
    max_demos: int = 4,
    lm: Any | None = None,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    import dspy

    from trading.llm.dspy_program import INPUT_FIELDS, TradeReviewCommitteeV1, program_inputs

    if optimizer not in OPTIMIZERS:
        raise DspyLaneError("optimizer_unknown", f"{optimizer!r} (use {', '.join(OPTIMIZERS)})")
    data = _dataset(dataset_hash)
    train = sorted(
        (e for e in data["examples"] if e["split"] == "train"), key=lambda e: e["decisionHash"]
    )
    if not train:
        raise DspyLaneError("dataset_empty", f"dataset {dataset_hash} has no training examples")
    random.Random(seed).shuffle(train)  # noqa: S311 (reproducible order, not crypto)
    student = TradeReviewCommitteeV1()
    trainset = [
        dspy.Example(
            **program_inputs(_review_input(e, program=student, artifact_hash="")),
            **labelled_fields(e),
        ).with_inputs(*INPUT_FIELDS)
        for e in train
    ]
    with dspy.context(lm=_lane_lm(lm)):
        if optimizer == "labeled-fewshot":
            compiled = dspy.LabeledFewShot(k=max_demos).compile(student, trainset=trainset)
        else:
            compiled = dspy.BootstrapFewShot(
                metric=_verdict_metric,
                max_bootstrapped_demos=max_demos,
                max_labeled_demos=max_demos,
                max_rounds=1,
            ).compile(student, trainset=trainset)
    state = json.loads(json.dumps(compiled.dump_state()))
    prompt_hash = sha256_hex(state)
    state_key = f"dspy/programs/{prompt_hash}/program-state.json"
    state_uri, _ = _store(state_key, state)
    signature_versions = {student.program_name: student.signature_version}
    metric_bundle = {
        "trainExamples": len(trainset),
        "demos": len(compiled.review.demos),
        "maxDemos": max_demos,
    }
    result = artifacts.compile_result(
        program_name=student.program_name,
        signature_versions=signature_versions,
        optimizer=optimizer,
        dataset_hash=dataset_hash,
        metric_bundle=metric_bundle,
        program_state=state,
        compiled_artifact_uri=state_uri,
        seed=seed,
        created_at=now or timezone.now(),
    )
    key = f"dspy/artifacts/{result['artifactHash']}/{artifacts.COMPILE_FILE}"
    _, file_hash = _store(key, result)
    return _upsert(
        f"compile:{result['artifactHash']}",
        lane=DspyLane.COMPILE,
        status=DspyArtifactStatus.COMPILED,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["compile"],
        program_name=student.program_name,
        signature_version=student.signature_version,
        optimizer=optimizer,
        artifact_uri=state_uri,
        object_key=key,
        artifact_hash=result["artifactHash"],
        dataset_hash=dataset_hash,
        compiled_prompt_hash=result["compiledPromptHash"],
        reproducibility_hash=result["reproducibilityHash"],
        file_hash=file_hash,
        metric_bundle=metric_bundle,
        metadata={"program_state_key": state_key, "seed": seed},
    )


# -- eval --------------------------------------------------------------------------------------


def _compile_row(artifact_hash: str) -> LLMDspyWorkflowArtifact:
    row = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.COMPILE, artifact_hash=artifact_hash
    ).first()
    if row is None:
        raise DspyLaneError("artifact_unknown", f"no compiled artifact {artifact_hash}")
    return row


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
    import dspy

    from trading.llm.dspy_program import program_for, program_inputs

    row = _compile_row(artifact_hash)
    program = program_for(row.program_name, row.signature_version)
    program.load_state(load_program_state(row))
    policy = artifacts.load_metrics_policy(policy_ref)
    data = _dataset(row.dataset_hash)
    examples = [e for e in data["examples"] if split == "all" or e["split"] == split]
    valid = aligned = vetoed_approvals = errors = 0
    latencies: list[int] = []
    with dspy.context(lm=_lane_lm(lm)):
        for example in examples:
            inputs = program_inputs(
                _review_input(example, program=program, artifact_hash=artifact_hash)
            )
            started = time.perf_counter()
            try:
                verdict = _prediction_verdict(program(**inputs))
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
    report = artifacts.eval_report(
        artifact_hash=artifact_hash,
        dataset_hash=row.dataset_hash,
        metrics=metrics,
        policy=policy,
        created_at=now or timezone.now(),
    )
    key = f"dspy/artifacts/{artifact_hash}/evals/{report['evalHash']}/{artifacts.EVAL_FILE}"
    uri, file_hash = _store(key, report)
    return _upsert(
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
        | report["metricBundle"],
        metadata={"split": split, "compile_run_key": row.run_key},
    )


# -- promote -----------------------------------------------------------------------------------


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
    policy = artifacts.load_metrics_policy(policy_ref)["promotion"]
    evaluation = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.EVAL, eval_hash=eval_hash, artifact_hash=artifact_hash
    ).first()
    if evaluation is None:
        raise DspyLaneError("eval_unknown", f"no evaluation {eval_hash} of {artifact_hash}")
    if evaluation.gate_compatibility != "pass":
        raise DspyLaneError("eval_gate_failed", f"evaluation {eval_hash} did not pass the policy")
    if target not in policy.get("allowedTargets", artifacts.PROMOTION_TARGETS):
        raise DspyLaneError("promotion_target_not_allowed", target)
    token_ref = (approval_token_ref or "").strip()
    if policy.get("requireApprovalToken", True) and not token_ref:
        raise DspyLaneError("approval_token_required", "give the approval's reference")
    if not (
        approver is not None
        and approver.is_active
        and approver.has_perm("trading.change_llmdspyworkflowartifact")
    ):
        raise DspyLaneError("approver_not_authorized", f"{approver} may not promote DSPy artifacts")
    existing = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.PROMOTE,
        artifact_hash=artifact_hash,
        eval_hash=eval_hash,
        promotion_target=target,
    ).first()
    if existing is not None:
        return existing  # already promoted to this target: the first approval stands
    compile_row = _compile_row(artifact_hash)
    compile_result = _load(compile_row.object_key)
    report = _load(evaluation.object_key)
    record = artifacts.promotion_record(
        artifact_hash=artifact_hash,
        eval_hash=eval_hash,
        promotion_target=target,
        approval_token_ref=token_ref,
        promoted_by=approver.get_username(),
        created_at=now or timezone.now(),
    )
    base = f"dspy/artifacts/{artifact_hash}/promotions/{record['promotionHash']}"
    uri, file_hash = _store(f"{base}/{artifacts.PROMOTION_FILE}", record)
    manifest = artifacts.bundle(
        compile_result=compile_result, eval_report=report, promotion_record=record
    )
    bundle_uri, bundle_hash = _store(f"{base}/{artifacts.BUNDLE_FILE}", manifest)
    return _upsert(
        f"promote:{record['promotionHash']}",
        lane=DspyLane.PROMOTE,
        status=DspyArtifactStatus.PROMOTED,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["promote"],
        program_name=compile_row.program_name,
        signature_version=compile_row.signature_version,
        optimizer=compile_row.optimizer,
        artifact_uri=uri,
        object_key=f"{base}/{artifacts.PROMOTION_FILE}",
        artifact_hash=artifact_hash,
        dataset_hash=compile_row.dataset_hash,
        compiled_prompt_hash=compile_row.compiled_prompt_hash,
        reproducibility_hash=compile_row.reproducibility_hash,
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


# -- AgentRun ----------------------------------------------------------------------------------


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
        _upsert(
            f"agentrun:{key}",
            status=DspyArtifactStatus.FAILED,
            metadata={"error": str(exc), "status_code": exc.status_code},
            **common,
        )
        raise DspyLaneError("agentrun_submit_failed", str(exc)) from exc
    metadata = submitted.response.get("resource", {}).get("metadata", {})
    return _upsert(
        f"agentrun:{key}",
        status=DspyArtifactStatus.SUBMITTED,
        agentrun_name=submitted.name,
        agentrun_namespace=str(metadata.get("namespace") or payload["namespace"]),
        agentrun_uid=submitted.uid,
        response_payload=submitted.response,
        metadata={"phase": submitted.phase, "http_attempts": submitted.http_attempts},
        **common,
    )
