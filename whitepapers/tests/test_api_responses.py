"""The whitepaper status and run-detail answers match their exact response schemas
(`whitepapers.api_responses`) with every block filled in: the fuzzing's seeded run has no
version, AgentRun, steps, synthesis, verdict or pull request, so schemathesis alone would only
see their nulls and empty lists. The webhook's answers: tests/security/test_webhook_replay.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.schema_conformance import response_component, schema_errors
from torghut_site.models import HeartbeatKind
from torghut_site.services import heartbeat_record
from whitepapers.models import (
    DocumentSource,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperCodexAgentRun,
    WhitepaperDesignPullRequest,
    WhitepaperDocument,
    WhitepaperDocumentVersion,
    WhitepaperSynthesis,
    WhitepaperViabilityVerdict,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("wp-schema-operator"))
    return client


def _finished_run() -> WhitepaperAnalysisRun:
    document = WhitepaperDocument.objects.create(
        document_key="d" * 40,
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier="proompteng/lab#7",
        title="Momentum",
        status="analyzed",
    )
    version = WhitepaperDocumentVersion.objects.create(
        document=document,
        version_number=1,
        file_name="momentum.pdf",
        file_size_bytes=2048,
        checksum_sha256="c" * 64,
        ceph_bucket="papers",
        ceph_object_key="raw/momentum.pdf",
        parse_status="stored",
        page_count=3,
        char_count=900,
    )
    run = WhitepaperAnalysisRun.objects.create(
        run_id="wp-" + "a" * 24,
        document=document,
        document_version=version,
        status="completed",
        trigger_source="github_issue",
        orchestration_context={"issue": {"number": 7}, "labels": ["research"]},
        started_at=T0,
        completed_at=T0,
    )
    WhitepaperCodexAgentRun.objects.create(
        run=run,
        agentrun_name="codex-whitepaper-agent-0007",
        namespace="agents",
        uid="uid-7",
        status="succeeded",
        idempotency_key="k-7",
        prompt_text="read it",
        prompt_hash="p" * 64,
        started_at=T0,
    )
    WhitepaperAnalysisStep.objects.create(
        run=run, step_name="agent_analysis", status="completed", duration_ms=900
    )
    WhitepaperSynthesis.objects.create(
        run=run,
        executive_summary="works",
        key_findings=["Sharpe 1.4 OOS", {"drawdown": "halved"}],
        confidence=Decimal("0.7200"),
    )
    WhitepaperViabilityVerdict.objects.create(
        run=run, verdict="implement", score=Decimal("81.5000"), confidence=Decimal("0.9000")
    )
    WhitepaperDesignPullRequest.objects.create(
        run=run,
        status="open",
        pr_number=1234,
        pr_url="https://github.com/proompteng/lab/pull/1234",
        title="Design",
    )
    return run


def test_a_finished_run_detail_matches_its_exact_schema(operator):
    run = _finished_run()
    response = operator.get(f"/whitepapers/runs/{run.run_id}")
    assert response.status_code == 200
    body = response.json()
    blocks = ("document_version", "agentrun", "synthesis", "verdict")
    assert [name for name in blocks if body[name] is None] == []
    assert (len(body["steps"]), len(body["design_pull_requests"])) == (1, 1)
    assert (body["synthesis"]["confidence"], body["verdict"]["score"]) == ("0.7200", "81.5000")
    assert response_component("/whitepapers/runs/{run_id}") == "WhitepaperRunDetail"
    assert schema_errors(body, "WhitepaperRunDetail") == []
    # closed at every level: a key nobody named fails
    body["agentrun"]["phase"] = "x"
    assert schema_errors(body["agentrun"], "RunAgentRun") == [
        ": Additional properties are not allowed ('phase' was unexpected)"
    ]
    assert len(schema_errors(body, "WhitepaperRunDetail")) == 1


def test_a_queued_run_detail_matches_its_exact_schema(operator):
    document = WhitepaperDocument.objects.create(
        document_key="e" * 40, source=DocumentSource.UPLOAD, source_identifier="upload:1"
    )
    run = WhitepaperAnalysisRun.objects.create(run_id="wp-" + "b" * 24, document=document)
    body = operator.get(f"/whitepapers/runs/{run.run_id}").json()
    assert [body[name] for name in ("document_version", "agentrun", "synthesis", "verdict")] == [
        None
    ] * 4
    assert schema_errors(body, "WhitepaperRunDetail") == []


def _status(client: APIClient) -> dict[str, Any]:
    response = client.get("/whitepapers/status")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_each_status_form_matches_its_own_closed_schema_only(operator, settings):
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    _finished_run()
    heartbeat_record(kind=HeartbeatKind.WHITEPAPER_CONSUMER, interval_seconds=5, name="wp-1")
    anonymous, detailed = _status(APIClient()), _status(operator)
    assert anonymous == {"ok": True, "workflow_enabled": True}
    assert detailed["runs_by_status"] == {"completed": 1}
    assert [c["name"] for c in detailed["consumers"]] == ["wp-1"]
    assert response_component("/whitepapers/status") == "WhitepaperStatus"
    for answer, form, other in (
        (anonymous, "WhitepaperHealth", "WhitepaperStatusDetail"),
        (detailed, "WhitepaperStatusDetail", "WhitepaperHealth"),
    ):
        assert schema_errors(answer, "WhitepaperStatus") == []
        assert schema_errors(answer, form) == []
        assert schema_errors(answer, other) != []
    # a status the model does not have is not a run count the schema allows
    detailed["runs_by_status"]["exploded"] = 1
    assert schema_errors(detailed, "WhitepaperStatusDetail") == [
        "runs_by_status: Additional properties are not allowed ('exploded' was unexpected)"
    ]
