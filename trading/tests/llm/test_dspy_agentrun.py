"""`build_dspy_agentrun_payload` rules and the submission to Jangar's `/v1/agent-runs`."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from tests.servers.base import Fault
from trading.llm.dspy.agentrun import build_dspy_agentrun_payload
from trading.models import LLMDspyWorkflowArtifact
from trading.services.dspy_lanes import DspyLaneError, dspy_agentrun_submit

BASE: dict[str, Any] = {
    "lane": "compile",
    "idempotency_key": "dspy-compile-2026-03-02",
    "repository": "proompteng/lab",
    "base": "main",
    "head": "codex/dspy-compile-2026-03-02",
    "artifact_path": "artifacts/dspy/2026-03-02",
}


def test_the_payload_has_every_rule_of_the_contract():
    payload = build_dspy_agentrun_payload(
        **BASE, parameter_overrides={"datasetHash": "abc", "maxDemos": 4, "dryRun": False}
    )
    assert payload == {
        "namespace": "agents",
        "idempotencyKey": "dspy-compile-2026-03-02",
        "agentRef": {"name": "codex-agent"},
        "implementationSpecRef": {"name": "torghut-dspy-compile-mipro-v1"},
        "runtime": {"type": "job"},
        "vcsRef": {"name": "github"},
        "vcsPolicy": {"required": True, "mode": "read-write"},
        "parameters": {
            "repository": "proompteng/lab",
            "base": "main",
            "head": "codex/dspy-compile-2026-03-02",
            "artifactPath": "artifacts/dspy/2026-03-02",
            "datasetHash": "abc",
            "maxDemos": "4",
            "dryRun": "False",
        },
        "policy": {"secretBindingRef": "codex-whitepaper-github-token"},
        "ttlSecondsAfterFinished": 14400,
    }


@pytest.mark.parametrize(
    ("lane", "spec"),
    [
        ("dataset-build", "torghut-dspy-dataset-build-v1"),
        ("compile", "torghut-dspy-compile-mipro-v1"),
        ("eval", "torghut-dspy-eval-v1"),
        ("gepa-experiment", "torghut-dspy-gepa-experiment-v1"),
        ("promote", "torghut-dspy-promote-artifact-v1"),
    ],
)
def test_the_implementation_spec_comes_from_the_lane_catalog(lane, spec):
    payload = build_dspy_agentrun_payload(**{**BASE, "lane": lane})
    assert payload["implementationSpecRef"] == {"name": spec}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"idempotency_key": ""}, "idempotency_key_required"),
        ({"idempotency_key": "   "}, "idempotency_key_required"),
        ({"lane": "deploy"}, "unknown_lane:deploy"),
        ({"repository": " "}, "repository_base_head_required"),
        ({"base": ""}, "repository_base_head_required"),
        ({"head": ""}, "repository_base_head_required"),
        ({"artifact_path": ""}, "artifact_path_required"),
        ({"parameter_overrides": {"datasetHash": None}}, "parameter_datasetHash_must_be_non_null"),
        (
            {"parameter_overrides": {"demos": [1, 2]}},
            "parameter_demos_must_be_string_coercible_scalar",
        ),
        (
            {"parameter_overrides": {"config": {"k": 1}}},
            "parameter_config_must_be_string_coercible_scalar",
        ),
        ({"parameter_overrides": {"note": "  "}}, "parameter_note_must_be_non_empty"),
        (
            {"ttl_seconds_after_finished": -1},
            "ttl_seconds_after_finished_must_be_non_negative_integer",
        ),
        (
            {"ttl_seconds_after_finished": True},
            "ttl_seconds_after_finished_must_be_non_negative_integer",
        ),
    ],
)
def test_the_builder_refuses_what_breaks_a_rule(changes, error):
    with pytest.raises(ValueError, match=f"^{error}$"):
        build_dspy_agentrun_payload(**{**BASE, **changes})


@pytest.mark.django_db
def test_a_lane_is_submitted_once_per_idempotency_key(jangar, settings):
    settings.LLM_DSPY_AGENTRUN_TTL_SECONDS = 3600
    first = dspy_agentrun_submit(**BASE, parameter_overrides={"datasetHash": "abc"})
    second = dspy_agentrun_submit(**BASE, parameter_overrides={"datasetHash": "abc"})
    (request, again) = jangar.submits()
    assert request.headers["idempotency-key"] == "dspy-compile-2026-03-02"
    assert again.headers["idempotency-key"] == "dspy-compile-2026-03-02"
    body = request.json()
    assert (body["implementationSpecRef"], body["ttlSecondsAfterFinished"]) == (
        {"name": "torghut-dspy-compile-mipro-v1"},
        3600,
    )
    assert len(jangar.runs) == 1
    assert (first.pk, first.agentrun_name) == (second.pk, second.agentrun_name)
    row = LLMDspyWorkflowArtifact.objects.get()
    assert (row.run_key, row.lane, row.status, row.idempotency_key) == (
        "agentrun:dspy-compile-2026-03-02",
        "compile",
        "submitted",
        "dspy-compile-2026-03-02",
    )
    assert row.agentrun_name == "codex-agent-0001"
    assert row.request_payload == body


@pytest.mark.django_db
def test_a_5xx_is_retried_with_the_same_key_and_a_4xx_is_recorded(jangar):
    jangar.inject(Fault("POST", "/v1/agent-runs", status=503))
    row = dspy_agentrun_submit(**BASE)
    assert [r.headers["idempotency-key"] for r in jangar.submits()] == [BASE["idempotency_key"]] * 2
    assert (row.status, row.metadata["http_attempts"]) == ("submitted", 2)

    jangar.inject(Fault("POST", "/v1/agent-runs", status=422, body={"error": "bad spec"}))
    with pytest.raises(DspyLaneError) as failed:
        dspy_agentrun_submit(**{**BASE, "idempotency_key": "dspy-eval-1", "lane": "eval"})
    assert failed.value.code == "agentrun_submit_failed"
    failed_row = LLMDspyWorkflowArtifact.objects.get(run_key="agentrun:dspy-eval-1")
    assert (failed_row.status, failed_row.metadata["status_code"]) == ("failed", 422)


@pytest.mark.django_db
def test_a_refused_payload_is_never_sent(jangar):
    with pytest.raises(ValueError, match="idempotency_key_required"):
        dspy_agentrun_submit(**{**BASE, "idempotency_key": ""})
    assert jangar.submits() == []
    assert LLMDspyWorkflowArtifact.objects.count() == 0


@pytest.mark.django_db
def test_the_command_submits_with_parameters(jangar, capsys):
    call_command(
        "dspy",
        "submit-agentrun",
        "--lane",
        "eval",
        "--idempotency-key",
        "dspy-eval-7",
        "--repository",
        "proompteng/lab",
        "--base",
        "main",
        "--head",
        "codex/dspy-eval-7",
        "--artifact-path",
        "artifacts/dspy/eval-7",
        "--param",
        "artifactHash=abc123",
    )
    (request,) = jangar.submits()
    assert request.json()["parameters"]["artifactHash"] == "abc123"
    assert '"status": "submitted"' in capsys.readouterr().out
