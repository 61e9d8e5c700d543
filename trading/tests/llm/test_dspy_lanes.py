"""The DSPy lanes end to end on a local LM: dataset → compile → evaluate → promote, with the
same hashes on a rerun, canonical files in object storage, and every refusal leaving no row."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from autonomy.engine.artifacts import canonical_json, sha256_hex
from torghut_site.storage import object_get
from trading.models import LLMDspyWorkflowArtifact
from trading.services.dspy_lanes import (
    DspyLaneError,
    dspy_compile,
    dspy_dataset_build,
    dspy_evaluate,
    dspy_promote,
)
from trading.tests.llm.data import LABELS, constant_dspy, perfect_reviewer

pytestmark = pytest.mark.django_db


def _stored(key: str) -> dict:
    data = object_get(key)
    payload = dict(json.loads(data))
    assert data == canonical_json(payload)  # sorted keys, compact, ASCII
    return payload


def test_dataset_labels_decisions_by_their_markout(labelled, llm_settings, artifacts_dir):
    row = dspy_dataset_build(horizon_minutes=30, veto_bps=Decimal(10))
    data = _stored(row.object_key)
    assert row.metric_bundle == {"examples": 20, "train": 14, "eval": 6, "veto": 5, "unlabelled": 1}
    assert [e["label"]["verdict"] for e in data["examples"]] == LABELS
    first = data["examples"][0]
    assert first["label"] == {
        "verdict": "approve",
        "markoutBps": "100.00",
        "exitPrice": "101.000000",
        "exitAt": "2026-03-02T15:10:00+00:00",
    }
    assert first["requestJson"]["decision"]["qty"] == "10.00000000"
    assert (
        data["datasetHash"]
        == row.dataset_hash
        == sha256_hex(
            {
                "schemaVersion": data["schemaVersion"],
                "labeling": data["labeling"],
                "examples": data["examples"],
            }
        )
    )
    again = dspy_dataset_build(horizon_minutes=30, veto_bps=Decimal(10))
    assert (again.pk, again.dataset_hash) == (row.pk, row.dataset_hash)
    assert LLMDspyWorkflowArtifact.objects.filter(lane="dataset-build").count() == 1


def test_compile_evaluate_promote_round_trip_with_reproducible_hashes(
    labelled, llm_settings, llm_server, artifacts_dir, approver
):
    llm_server.responder = perfect_reviewer(labelled)
    dataset = dspy_dataset_build()

    compiled = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="bootstrap-fewshot")
    result = _stored(compiled.object_key)
    state = _stored(compiled.metadata["program_state_key"])
    assert result["compiledPromptHash"] == compiled.compiled_prompt_hash == sha256_hex(state)
    assert result["artifactHash"] == compiled.artifact_hash
    assert result["reproducibilityHash"] == compiled.reproducibility_hash
    assert (result["programName"], result["signatureVersions"], result["optimizer"]) == (
        "trade-review-committee-v1",
        {"trade-review-committee-v1": "v1"},
        "bootstrap-fewshot",
    )
    assert result["metricBundle"] == {"trainExamples": 14, "demos": 4, "maxDemos": 4}
    assert len(state["review"]["demos"]) == 4
    calls_after_compile = len(llm_server.completions())
    assert calls_after_compile >= 4  # the optimizer ran the program on the local LM

    # the same dataset, optimizer and seed give the same program and the same hashes
    again = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="bootstrap-fewshot")
    assert (
        again.pk,
        again.artifact_hash,
        again.compiled_prompt_hash,
        again.reproducibility_hash,
    ) == (
        compiled.pk,
        compiled.artifact_hash,
        compiled.compiled_prompt_hash,
        compiled.reproducibility_hash,
    )

    evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash)
    report = _stored(evaluation.object_key)
    assert (report["schemaValidRate"], report["vetoAlignmentRate"], report["falseVetoRate"]) == (
        1.0,
        1.0,
        0.0,
    )
    assert report["metricBundle"]["baselineVetoAlignmentRate"] == pytest.approx(4 / 6)
    assert report["metricBundle"]["examples"] == 6
    assert (report["gateCompatibility"], report["promotionRecommendation"]) == ("pass", "shadow")
    assert {k: g["pass"] for k, g in report["metricBundle"]["gates"].items()} == {
        "schemaValidRate": True,
        "vetoAlignmentRateDelta": True,
        "falseVetoRate": True,
        "latencyP95Ms": True,
    }
    assert dspy_evaluate(artifact_hash=compiled.artifact_hash).eval_hash == evaluation.eval_hash

    promotion = dspy_promote(
        artifact_hash=compiled.artifact_hash,
        eval_hash=evaluation.eval_hash,
        target="shadow",
        approver=approver,
        approval_token_ref="CHG-1042",
    )
    record = _stored(promotion.object_key)
    assert record == {
        "artifactHash": compiled.artifact_hash,
        "evalHash": evaluation.eval_hash,
        "promotionTarget": "shadow",
        "approved": True,
        "approvalTokenRef": "CHG-1042",
        "promotedBy": "risk-officer",
        "promotionHash": promotion.promotion_hash,
        "createdAt": record["createdAt"],
    }
    assert (promotion.status, promotion.approved_by_id) == ("promoted", approver.pk)
    bundle = _stored(promotion.metadata["bundle_key"])
    assert bundle["artifactHashes"] == {
        "compile_result": sha256_hex(result),
        "eval_report": sha256_hex(report),
        "promotion_record": sha256_hex(record),
    }
    assert bundle["manifestHash"] == sha256_hex(bundle["artifactHashes"])
    assert sorted(p.name for p in artifacts_dir.rglob("dspy-*.json")) == [
        "dspy-bundle.json",
        "dspy-compile-result.json",
        "dspy-dataset.json",
        "dspy-eval-report.json",
        "dspy-promotion-record.json",
    ]


def test_a_different_seed_or_optimizer_is_a_different_artifact(
    labelled, llm_settings, llm_server, artifacts_dir
):
    llm_server.responder = perfect_reviewer(labelled)
    dataset = dspy_dataset_build()
    a = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="labeled-fewshot", seed=0)
    b = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="labeled-fewshot", seed=1)
    c = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="bootstrap-fewshot", seed=0)
    assert len({a.artifact_hash, b.artifact_hash, c.artifact_hash}) == 3
    assert a.compiled_prompt_hash != b.compiled_prompt_hash
    assert llm_server.completions() != []  # only bootstrap asked the LM


def test_a_failed_evaluation_cannot_be_promoted(
    labelled, llm_settings, llm_server, artifacts_dir, approver
):
    llm_server.responder = perfect_reviewer(labelled)
    dataset = dspy_dataset_build()
    compiled = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="labeled-fewshot")
    llm_server.responder = constant_dspy("veto")  # a reviewer that vetoes everything
    evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash)
    assert (evaluation.gate_compatibility, evaluation.promotion_recommendation) == ("fail", "hold")
    assert evaluation.metric_bundle["falseVetoRate"] == 1.0
    with pytest.raises(DspyLaneError) as refused:
        dspy_promote(
            artifact_hash=compiled.artifact_hash,
            eval_hash=evaluation.eval_hash,
            target="shadow",
            approver=approver,
            approval_token_ref="CHG-1",
        )
    assert refused.value.code == "eval_gate_failed"
    assert not LLMDspyWorkflowArtifact.objects.filter(lane="promote").exists()


@pytest.mark.parametrize(
    ("target", "token", "who", "code"),
    [
        ("shadow", "", "approver", "approval_token_required"),
        ("moon", "CHG-1", "approver", "promotion_target_not_allowed"),
        ("shadow", "CHG-1", "nobody", "approver_not_authorized"),
    ],
)
def test_promotion_refusals_record_nothing(
    labelled, llm_settings, llm_server, artifacts_dir, approver, target, token, who, code
):
    llm_server.responder = perfect_reviewer(labelled)
    compiled = dspy_compile(
        dataset_hash=dspy_dataset_build().dataset_hash, optimizer="labeled-fewshot"
    )
    evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash)
    user = approver if who == "approver" else get_user_model().objects.create_user("bob")
    with pytest.raises(DspyLaneError) as refused:
        dspy_promote(
            artifact_hash=compiled.artifact_hash,
            eval_hash=evaluation.eval_hash,
            target=target,
            approver=user,
            approval_token_ref=token,
        )
    assert refused.value.code == code
    assert not LLMDspyWorkflowArtifact.objects.filter(lane="promote").exists()
    assert list(artifacts_dir.rglob("dspy-promotion-record.json")) == []


def test_the_command_runs_the_lanes_and_exits_2_on_a_failed_evaluation(
    labelled, llm_settings, llm_server, artifacts_dir, approver, capsys
):
    llm_server.responder = perfect_reviewer(labelled)
    call_command("dspy", "build-dataset")
    dataset = json.loads(capsys.readouterr().out)
    call_command("dspy", "compile", "--dataset-hash", dataset["dataset_hash"], "--max-demos", "2")
    compiled = json.loads(capsys.readouterr().out)
    assert compiled["metric_bundle"]["maxDemos"] == 2
    call_command("dspy", "evaluate", "--artifact-hash", compiled["artifact_hash"])
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["gate_compatibility"] == "pass"
    call_command(
        "dspy",
        "promote",
        "--artifact-hash",
        compiled["artifact_hash"],
        "--eval-hash",
        evaluation["eval_hash"],
        "--target",
        "paper",
        "--approved-by",
        "risk-officer",
        "--approval-token-ref",
        "CHG-77",
    )
    assert json.loads(capsys.readouterr().out)["status"] == "promoted"
    with pytest.raises(CommandError, match="approver_unknown"):
        call_command(
            "dspy",
            "promote",
            "--artifact-hash",
            compiled["artifact_hash"],
            "--eval-hash",
            evaluation["eval_hash"],
            "--target",
            "shadow",
            "--approved-by",
            "mallory",
            "--approval-token-ref",
            "CHG-78",
        )
    llm_server.responder = constant_dspy("veto")
    with pytest.raises(SystemExit) as exit_code:
        call_command("dspy", "evaluate", "--artifact-hash", compiled["artifact_hash"])
    assert exit_code.value.code == 2
    assert json.loads(capsys.readouterr().out)["gate_compatibility"] == "fail"
