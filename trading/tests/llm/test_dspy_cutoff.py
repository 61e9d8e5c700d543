"""Leak-free evaluation: a model is measured only on decisions made after its declared training
cutoff (LLM_MODEL_TRAINING_CUTOFFS_JSON), the report states its window, and a promotion refuses an
evaluation that starts on or before the cutoff of the model that will run the program.

The seeded decisions (`data.seed_decisions`) are AAPL buys every 40 minutes from 2026-03-02 14:30
UTC: decisions 0-14 fall on 2026-03-02 (the last at 23:50), decisions 15-19 on 2026-03-03 (00:30,
01:10, 01:50, 02:30, 03:10); decision 20 has no outcome.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests.conftest import manage
from torghut_site.storage import object_get
from trading.models import LLMDspyWorkflowArtifact
from trading.services.dspy_lanes import (
    DspyLaneError,
    dspy_compile,
    dspy_dataset_build,
    dspy_evaluate,
    dspy_promote,
)
from trading.tests.llm.data import perfect_reviewer

pytestmark = pytest.mark.django_db

AFTER_0302 = [
    "2026-03-03T00:30:00+00:00",
    "2026-03-03T01:10:00+00:00",
    "2026-03-03T01:50:00+00:00",
    "2026-03-03T02:30:00+00:00",
    "2026-03-03T03:10:00+00:00",
]
_ASKED = re.compile(r'"event_ts":"([^"]+)"')


def _compiled(labelled, llm_server):
    llm_server.responder = perfect_reviewer(labelled)
    dataset = dspy_dataset_build()
    return dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="labeled-fewshot")


def test_the_dataset_records_the_model_its_cutoff_and_the_window(
    labelled, llm_settings, artifacts_dir
):
    llm_settings.LLM_MODEL_TRAINING_CUTOFFS = {"test-model": date(2026, 3, 2)}
    row = dspy_dataset_build(
        since=datetime(2026, 3, 2, tzinfo=UTC),
        until=datetime(2026, 3, 4, tzinfo=UTC),
        horizon_minutes=30,
        veto_bps=Decimal(10),
    )
    data = json.loads(object_get(row.object_key))
    assert {k: data["labeling"][k] for k in ("window", "model", "trainingCutoff")} == {
        "window": {"since": "2026-03-02T00:00:00+00:00", "until": "2026-03-04T00:00:00+00:00"},
        "model": "test-model",
        "trainingCutoff": "2026-03-02",
    }
    assert row.metadata["labeling"]["trainingCutoff"] == "2026-03-02"
    assert (row.metric_bundle["examples"], row.metadata["warnings"]) == (20, [])


def test_evaluation_keeps_only_decisions_after_the_cutoff_and_states_its_window(
    labelled, llm_settings, llm_server, artifacts_dir
):
    compiled = _compiled(labelled, llm_server)
    llm_settings.LLM_MODEL_TRAINING_CUTOFFS = {"test-model": date(2026, 3, 2)}
    llm_server.reset()
    llm_server.responder = perfect_reviewer(labelled)
    evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash, split="all")
    window = {
        "since": "2026-03-03T00:30:00+00:00",
        "until": "2026-03-03T03:10:00+00:00",
        "trainingCutoff": "2026-03-02",
        "model": "test-model",
        "examples": 5,
        "droppedAtOrBeforeCutoff": 15,
    }
    assert evaluation.metric_bundle["window"] == window
    report = json.loads(object_get(evaluation.object_key))
    assert report["window"] == window
    assert report["metricBundle"]["examples"] == 5
    # the model was asked about exactly the five later decisions, none of 2026-03-02
    asked = [_ASKED.findall(b["messages"][-1]["content"])[0] for b in llm_server.completions()]
    assert asked == AFTER_0302


def test_no_example_after_the_cutoff_refuses_and_records_nothing(
    labelled, llm_settings, llm_server, artifacts_dir
):
    compiled = _compiled(labelled, llm_server)
    llm_settings.LLM_MODEL_TRAINING_CUTOFFS = {"test-model": date(2026, 3, 3)}
    llm_server.reset()
    with pytest.raises(DspyLaneError) as refused:
        dspy_evaluate(artifact_hash=compiled.artifact_hash, split="all")
    assert refused.value.code == "dataset_before_training_cutoff"
    assert llm_server.completions() == []
    assert not LLMDspyWorkflowArtifact.objects.filter(lane="eval").exists()


def test_a_model_without_a_declared_cutoff_is_not_evaluated(
    labelled, llm_settings, llm_server, artifacts_dir
):
    compiled = _compiled(labelled, llm_server)
    llm_settings.LLM_MODEL_TRAINING_CUTOFFS = {"other-model": date(2020, 1, 1)}
    llm_server.reset()
    with pytest.raises(DspyLaneError) as refused:
        dspy_evaluate(artifact_hash=compiled.artifact_hash)
    assert refused.value.code == "training_cutoff_missing"
    assert llm_server.completions() == []
    assert not LLMDspyWorkflowArtifact.objects.filter(lane="eval").exists()


@pytest.mark.parametrize(
    ("cutoffs", "code"),
    [
        ({"test-model": date(2026, 3, 2)}, "eval_window_before_training_cutoff"),
        ({}, "training_cutoff_missing"),
    ],
)
def test_promotion_refuses_an_evaluation_starting_before_the_running_models_cutoff(
    labelled, llm_settings, llm_server, artifacts_dir, approver, cutoffs, code
):
    compiled = _compiled(labelled, llm_server)
    evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash, split="all")
    assert evaluation.gate_compatibility == "pass"
    assert evaluation.metric_bundle["window"]["since"] == "2026-03-02T14:30:00+00:00"
    # the model that will run the program was trained through 2026-03-02 (or declares nothing)
    llm_settings.LLM_MODEL_TRAINING_CUTOFFS = cutoffs
    promote = {
        "artifact_hash": compiled.artifact_hash,
        "eval_hash": evaluation.eval_hash,
        "target": "shadow",
        "approver": approver,
        "approval_token_ref": "CHG-9",
    }
    with pytest.raises(DspyLaneError) as refused:
        dspy_promote(**promote)
    assert refused.value.code == code
    assert not LLMDspyWorkflowArtifact.objects.filter(lane="promote").exists()
    assert list(artifacts_dir.rglob("dspy-promotion-record.json")) == []
    llm_settings.LLM_MODEL_TRAINING_CUTOFFS = {"test-model": date(2026, 3, 1)}
    assert dspy_promote(**promote).status == "promoted"


SHOW = (
    "from django.conf import settings as s; "
    "print(repr(sorted((k, v.isoformat()) for k, v in s.LLM_MODEL_TRAINING_CUTOFFS.items())))"
)


def test_the_cutoff_setting_parses_and_bad_values_stop_startup_naming_the_variable():
    ok = manage(
        "shell",
        "-c",
        SHOW,
        env={"LLM_MODEL_TRAINING_CUTOFFS_JSON": '{"m1": "2025-06-30", "m2": "2024-10-01"}'},
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "[('m1', '2025-06-30'), ('m2', '2024-10-01')]"
    unset = manage("shell", "-c", SHOW, env={})
    assert unset.stdout.strip().splitlines()[-1] == "[]"
    for raw, problem in [
        ("{not json", "- LLM_MODEL_TRAINING_CUTOFFS_JSON"),
        ('["m1"]', "- LLM_MODEL_TRAINING_CUTOFFS_JSON must be a JSON object of model -> ISO date"),
        (
            '{"m1": "June 2025"}',
            "- LLM_MODEL_TRAINING_CUTOFFS_JSON['m1']='June 2025' is not an ISO date (YYYY-MM-DD)",
        ),
    ]:
        bad = manage("check", env={"LLM_MODEL_TRAINING_CUTOFFS_JSON": raw})
        assert bad.returncode != 0
        problems = [line.strip() for line in bad.stderr.splitlines() if line.startswith("  - ")]
        assert len(problems) == 1, bad.stderr
        assert problems[0].startswith(problem), problems
