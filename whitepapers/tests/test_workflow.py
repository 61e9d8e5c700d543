"""The whitepaper workflow end to end through the API: real Postgres, Ceph RGW, a PDF host and a
Jangar stand-in over HTTP; Celery tasks run eagerly when the transaction that queued them
commits."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.servers.base import Fault
from whitepapers.models import (
    GithubIssueEvent,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperCodexAgentRun,
    WhitepaperContent,
    WhitepaperDocument,
    WhitepaperDocumentVersion,
)
from whitepapers.run_tokens import run_token
from whitepapers.tests.pdfs import make_pdf
from whitepapers.tests.workflow import (
    comment_payload,
    envelope,
    expected_run_id,
    issue_payload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.services]

PAPER = make_pdf(["Momentum with regime filters", "Results: Sharpe 1.4 out of sample"])


def post_event(client: APIClient, payload: dict[str, Any], capture) -> Any:
    with capture(execute=True):
        return client.post("/whitepapers/events/github-issue", payload, format="json")


def _operator(codename: str = "change_whitepaperanalysisrun") -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(f"op-{codename}", password="pw-operator-123")
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return type(user).objects.get(pk=user.pk)


def version_of(run: WhitepaperAnalysisRun) -> WhitepaperDocumentVersion:
    version = run.document_version
    assert version is not None
    return version


def counts() -> dict[str, int]:
    return {
        "documents": WhitepaperDocument.objects.count(),
        "versions": WhitepaperDocumentVersion.objects.count(),
        "runs": WhitepaperAnalysisRun.objects.count(),
        "agentruns": WhitepaperCodexAgentRun.objects.count(),
        "contents": WhitepaperContent.objects.count(),
    }


def test_issue_opened_stores_the_paper_and_dispatches_one_agentrun(
    workflow, control, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)

    run_id = expected_run_id("proompteng/lab", 42, url)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] is True
    assert body["reason"] == "accepted"
    assert body["run_id"] == run_id

    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.status == "agentrun_dispatched"
    assert run.trigger_source == "github_issue_api"
    assert run.dispatch_attempt == 1
    version = version_of(run)
    sha = hashlib.sha256(PAPER).hexdigest()
    assert version.parse_status == "stored"
    assert version.version_number == 1
    assert version.checksum_sha256 == sha
    assert version.file_size_bytes == len(PAPER)
    assert version.ceph_bucket == workflow.bucket
    assert version.ceph_object_key == f"raw/checksum/{sha[:2]}/{sha}/source.pdf"
    assert version.ceph_etag == hashlib.md5(PAPER).hexdigest()  # noqa: S324 (S3's etag)
    assert version.page_count == 2
    assert workflow.objects() == [version.ceph_object_key]
    content = WhitepaperContent.objects.get(document_version=version)
    assert "Momentum with regime filters" in content.full_text
    assert "Sharpe 1.4" in content.full_text
    assert content.page_count == 2
    assert run.document.status == "queued"
    assert run.document.source_identifier == "proompteng/lab#42"
    assert body["document_key"] == run.document.document_key

    steps = list(run.steps.values_list("step_name", "step_order", "attempt", "status"))
    assert steps == [("issue_intake", 1, 1, "completed"), ("agentrun_dispatch", 2, 1, "completed")]

    submits = workflow.jangar.submits()
    assert len(submits) == 1
    assert submits[0].headers["idempotency-key"] == run_id
    sent = submits[0].json()
    assert sent["namespace"] == "agents"
    assert sent["idempotencyKey"] == run_id
    assert sent["agentRef"] == {"name": "codex-whitepaper-agent"}
    assert sent["runtime"] == {"type": "job"}
    assert sent["vcsPolicy"] == {"required": True, "mode": "read-write"}
    assert sent["policy"] == {"secretBindingRef": "codex-whitepaper-github-token"}
    assert sent["ttlSecondsAfterFinished"] == 7200
    assert sent["implementation"]["labels"] == ["whitepaper", "torghut", "design-doc"]
    params = sent["parameters"]
    assert params == {
        "repository": "proompteng/lab",
        "base": "main",
        "head": f"codex/whitepaper-{run_id[-16:]}",
        "issueNumber": "42",
        "issueTitle": "Paper: momentum with regime filters",
        "issueUrl": "https://github.com/proompteng/lab/issues/42",
        "runId": run_id,
        "documentKey": run.document.document_key,
        "cephUri": f"s3://{workflow.bucket}/{version.ceph_object_key}",
        "attachmentUrl": url,
        "finalizeToken": run_token(run_id, 1),
    }
    agentrun = WhitepaperCodexAgentRun.objects.get(run=run)
    # the token reaches the AgentRun only: what torghut keeps of the request is redacted
    assert agentrun.input_context == {**params, "finalizeToken": "[redacted]"}
    dispatch_step = run.steps.get(step_name="agentrun_dispatch")
    assert dispatch_step.input_json["parameters"]["finalizeToken"] == "[redacted]"
    assert params["finalizeToken"] not in str(dispatch_step.output_json)
    assert params["finalizeToken"] not in agentrun.prompt_text
    assert agentrun.attempt == 1
    assert agentrun.agentrun_name == "codex-whitepaper-agent-0001"
    assert agentrun.status == "queued"
    assert agentrun.idempotency_key == run_id
    assert agentrun.prompt_hash == hashlib.sha256(agentrun.prompt_text.encode()).hexdigest()
    assert "synthesis.json" in agentrun.prompt_text


def test_replays_change_nothing(workflow, control, django_capture_on_commit_callbacks):
    url = workflow.host.put("momentum.pdf", PAPER)
    first = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    before = counts()

    again = post_event(
        control, issue_payload(url=url, action="edited"), django_capture_on_commit_callbacks
    )
    assert again.status_code == 200
    assert again.json()["reason"] == "idempotent_replay"
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.json()["agentrun_name"] == "codex-whitepaper-agent-0001"

    # the same bytes under another issue (and another URL): the first run answers
    other_url = workflow.host.put("copy-of-momentum.pdf", PAPER)
    file_replay = post_event(
        control, issue_payload(url=other_url, number=77), django_capture_on_commit_callbacks
    )
    assert file_replay.status_code == 200
    assert file_replay.json()["reason"] == "idempotent_file_replay"
    assert file_replay.json()["run_id"] == first.json()["run_id"]

    assert counts() == before
    assert len(workflow.jangar.submits()) == 1
    assert workflow.host.downloads("momentum.pdf") == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"ref": "refs/heads/main", "commits": []}, "ignored_event"),
        (
            issue_payload(url=None, body="no marker here, just https://x.org/a.pdf"),
            "marker_missing",
        ),
        (issue_payload(url=None), "pdf_attachment_missing"),
        (
            issue_payload(
                url=None,
                body=(
                    "<!-- TORGHUT_WHITEPAPER:START -->\nworkflow: other-v9\n"
                    "<!-- TORGHUT_WHITEPAPER:END -->\nhttps://x.org/a.pdf"
                ),
            ),
            "unsupported_workflow_marker",
        ),
        (issue_payload(url="https://x.org/a.pdf", action="closed"), "ignored_event"),
        (
            comment_payload(url="https://x.org/a.pdf", text="looks great!"),
            "comment_without_requeue_keyword",
        ),
    ],
)
def test_refusals_have_the_original_reason_and_write_nothing(
    workflow, control, django_capture_on_commit_callbacks, payload, reason
):
    response = post_event(control, payload, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert response.json()["accepted"] is False
    assert response.json()["reason"] == reason
    assert counts() == {"documents": 0, "versions": 0, "runs": 0, "agentruns": 0, "contents": 0}
    assert workflow.objects() == []
    assert workflow.jangar.submits() == []
    event = GithubIssueEvent.objects.get()
    assert (event.status, event.reason, event.source) == ("processed", reason, "api")


def test_workflow_disabled(workflow, control, settings, django_capture_on_commit_callbacks):
    settings.WHITEPAPER_WORKFLOW_ENABLED = False
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert response.json()["reason"] == "workflow_disabled"
    assert counts()["runs"] == 0


def test_froussard_envelope_and_redirect(workflow, control, django_capture_on_commit_callbacks):
    workflow.host.put("paper.pdf", PAPER)
    url = f"{workflow.host.url}/go/paper.pdf"
    response = post_event(
        control,
        envelope(issue_payload(url=url), delivery="gh-delivery-9"),
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 202
    run = WhitepaperAnalysisRun.objects.get()
    assert run.run_id == expected_run_id("proompteng/lab", 42, url)
    assert run.source_delivery_id == "gh-delivery-9"
    assert version_of(run).upload_metadata["final_url"] == f"{workflow.host.url}/papers/paper.pdf"
    assert run.steps.get(step_name="issue_intake").idempotency_key == "gh-delivery-9"


@pytest.mark.parametrize(
    ("name", "data", "ctype", "reason"),
    [
        ("huge.pdf", b"%PDF-1.7\n" + b"0" * 5000, "application/pdf", "pdf_too_large"),
        ("page.html", b"<html><body>not a paper</body></html>", "text/html", "pdf_not_pdf"),
    ],
)
def test_bad_downloads_record_a_failed_run_and_no_object(
    workflow, control, settings, django_capture_on_commit_callbacks, name, data, ctype, reason
):
    settings.WHITEPAPER_MAX_PDF_BYTES = 4096
    url = workflow.host.put(name, data, ctype=ctype)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["reason"]) == (False, reason)
    run = WhitepaperAnalysisRun.objects.get(run_id=body["run_id"])
    assert run.status == "failed"
    assert run.failure_code == reason
    assert run.document.status == "failed"
    version = version_of(run)
    assert (version.parse_status, version.ceph_object_key, version.checksum_sha256) == (
        "failed",
        "",
        "",
    )
    assert version.parse_error.startswith(f"{reason}: ")
    assert WhitepaperContent.objects.count() == 0
    assert list(run.steps.values_list("step_name", "status")) == [("issue_intake", "failed")]
    assert workflow.objects() == []
    assert workflow.jangar.submits() == []


def test_dispatch_retries_5xx_with_one_idempotency_key(
    workflow, control, django_capture_on_commit_callbacks
):
    workflow.jangar.inject(Fault("POST", "/v1/agent-runs", times=2, status=503))
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    run_id = response.json()["run_id"]

    submits = workflow.jangar.submits()
    assert len(submits) == 3
    assert {s.headers["idempotency-key"] for s in submits} == {run_id}
    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.status == "agentrun_dispatched"
    step = run.steps.get(step_name="agentrun_dispatch")
    assert step.output_json["http_attempts"] == 3
    assert len(step.error_json["retried_errors"]) == 2
    assert WhitepaperCodexAgentRun.objects.filter(run=run).count() == 1


def test_a_timed_out_submit_that_jangar_did_create_is_adopted_not_duplicated(
    workflow, control, django_capture_on_commit_callbacks
):
    # Jangar creates the AgentRun, then answers too late: the retry gets the same AgentRun back
    workflow.jangar.inject(Fault("POST", "/v1/agent-runs", delay=1.0, after_handler=True))
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)

    assert len(workflow.jangar.submits()) == 2
    assert len(workflow.jangar.runs) == 1
    agentrun = WhitepaperCodexAgentRun.objects.get()
    assert agentrun.agentrun_name == "codex-whitepaper-agent-0001"
    assert agentrun.run.run_id == response.json()["run_id"]


def test_dispatch_that_keeps_failing_fails_the_run_and_manual_dispatch_recovers(
    workflow, control, django_capture_on_commit_callbacks
):
    workflow.jangar.inject(Fault("POST", "/v1/agent-runs", times=3, status=502))
    url = workflow.host.put("momentum.pdf", PAPER)
    run_id = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks).json()[
        "run_id"
    ]
    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.status == "failed"
    assert run.failure_code == "agentrun_dispatch_failed"
    assert run.failure_reason.startswith("agentrun_dispatch_failed:JangarError:HTTP 502")
    assert run.steps.get(step_name="agentrun_dispatch").status == "failed"
    assert WhitepaperCodexAgentRun.objects.count() == 0

    response = control.post(f"/whitepapers/runs/{run_id}/dispatch-agentrun")
    assert response.status_code == 200
    assert response.json() == {
        "run_id": run_id,
        "attempt": 1,
        "agentrun_name": "codex-whitepaper-agent-0001",
        "agentrun_uid": WhitepaperCodexAgentRun.objects.get().uid,
        "status": "queued",
    }
    run.refresh_from_db()
    assert (run.status, run.failure_code, run.failure_reason) == ("agentrun_dispatched", "", "")
    # same attempt, same key: a submit Jangar may have half-seen cannot become a second agent
    assert {s.headers["idempotency-key"] for s in workflow.jangar.submits()} == {run_id}

    again = control.post(f"/whitepapers/runs/{run_id}/dispatch-agentrun")
    assert again.status_code == 200
    assert again.json()["idempotent"] is True
    assert len(workflow.jangar.submits()) == 4


def test_dispatch_of_unknown_run_is_404(workflow, control):
    response = control.post("/whitepapers/runs/wp-000000000000000000000000/dispatch-agentrun")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "run_not_found"


def _finalize_payload(run_id: str) -> dict[str, Any]:
    return {
        "status": "completed",
        "synthesis": {
            "synthesis_version": "v1",
            "generated_by": "codex",
            "model_name": "gpt-5-codex",
            "executive_summary": "Regime-filtered momentum beats plain momentum.",
            "problem_statement": "Momentum crashes in high-volatility regimes.",
            "methodology_summary": "Volatility regime classifier gates a 12-1 momentum signal.",
            "key_findings": ["Sharpe 1.4 OOS", "Drawdown halved"],
            "novelty_claims": ["regime gate"],
            "risk_assessment": ["regime misclassification"],
            "citations": ["Daniel & Moskowitz 2016"],
            "implementation_implications": ["add a regime feature", "gate the momentum strategy"],
            "confidence": 0.72,
        },
        "verdict": {
            "verdict": "implement",
            "score": 0.81,
            "confidence": 0.7,
            "decision_policy": "whitepaper-gates-v1",
            "gating": {"oos_sharpe": 1.4},
            "dspy_eval_report": {"accuracy": 0.9},
            "rationale": "Evidence is out of sample.",
            "rejection_reasons": [],
            "recommendations": ["paper trade 4 weeks"],
            "requires_followup": True,
        },
        "design_pull_request": {
            "status": "open",
            "repository": "proompteng/lab",
            "base_branch": "main",
            "head_branch": f"codex/whitepaper-{run_id[-16:]}",
            "pr_number": 1234,
            "pr_url": "https://github.com/proompteng/lab/pull/1234",
            "title": "Design: regime-filtered momentum",
            "ci_status": "pending",
        },
        "artifacts": [
            {
                "artifact_scope": "run",
                "artifact_type": "design_doc",
                "artifact_role": "output",
                "ceph_bucket": "torghut-whitepapers",
                "ceph_object_key": f"runs/{run_id}/design.md",
                "content_type": "text/markdown",
                "size_bytes": 2048,
            }
        ],
        "steps": [
            {
                "step_name": "agent_analysis",
                "step_order": 3,
                "status": "completed",
                "duration_ms": 90000,
            }
        ],
    }


def test_finalize_records_everything_once(workflow, control, django_capture_on_commit_callbacks):
    url = workflow.host.put("momentum.pdf", PAPER)
    run_id = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks).json()[
        "run_id"
    ]
    agent = workflow.agent(run_id)
    response = agent.post(
        f"/whitepapers/runs/{run_id}/finalize", _finalize_payload(run_id), format="json"
    )
    assert response.status_code == 200
    first = response.json()
    assert (first["run_id"], first["status"]) == (run_id, "completed")
    assert first["completed_at"] is not None

    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.document.status == "analyzed"
    assert (
        run.synthesis.implementation_plan_md
        == "- add a regime feature\n- gate the momentum strategy"
    )
    assert run.synthesis.key_findings == ["Sharpe 1.4 OOS", "Drawdown halved"]
    assert str(run.synthesis.confidence) == "0.7200"
    assert run.verdict.verdict == "implement"
    assert run.verdict.gating_json == {"oos_sharpe": 1.4, "dspy_eval_report": {"accuracy": 0.9}}
    pr = run.design_pull_requests.get()
    assert (pr.attempt, pr.pr_number) == (1, 1234)
    assert pr.codex_agentrun == run.agentruns.get(agentrun_name="codex-whitepaper-agent-0001")
    artifact = run.artifacts.get()
    assert artifact.ceph_object_key == f"runs/{run_id}/design.md"
    assert artifact.design_pull_request_id == pr.pk
    assert run.steps.get(step_name="agent_analysis").duration_ms == 90000
    assert run.agentruns.get().status == "succeeded"
    assert run.result_payload["verdict"]["verdict"] == "implement"

    rows = (
        WhitepaperAnalysisStep.objects.count(),
        run.design_pull_requests.count(),
        run.artifacts.count(),
    )
    again = agent.post(
        f"/whitepapers/runs/{run_id}/finalize", _finalize_payload(run_id), format="json"
    )
    assert again.status_code == 200
    assert again.json() == first
    assert (
        WhitepaperAnalysisStep.objects.count(),
        run.design_pull_requests.count(),
        run.artifacts.count(),
    ) == rows

    # a completed run cannot be failed afterwards
    late = agent.post(f"/whitepapers/runs/{run_id}/finalize", {"status": "failed"}, format="json")
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "illegal_run_transition"
    run.refresh_from_db()
    assert run.status == "completed"

    detail = control.get(f"/whitepapers/runs/{run_id}")
    assert detail.status_code == 200
    assert detail.json()["verdict"]["verdict"] == "implement"
    assert (
        detail.json()["design_pull_requests"][0]["pr_url"]
        == "https://github.com/proompteng/lab/pull/1234"
    )
    assert detail.json()["agentrun"]["agentrun_name"] == "codex-whitepaper-agent-0001"


def test_finalize_rejects_bad_payloads_without_writing(
    workflow, control, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    run_id = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks).json()[
        "run_id"
    ]
    agent = workflow.agent(run_id)
    bad = agent.post(
        f"/whitepapers/runs/{run_id}/finalize",
        {"status": "bogus", "synthesis": {"executive_summary": "x"}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_request"
    bad_conf = agent.post(
        f"/whitepapers/runs/{run_id}/finalize", {"verdict": {"confidence": 3}}, format="json"
    )
    assert bad_conf.status_code == 400
    # numbers beyond their columns (found by the schema fuzzer: it was a 500 from the insert)
    for step in (
        {"step_name": "s", "duration_ms": 31258824572122037978398720},
        {"step_name": "s", "attempt": 2**31},
        {"step_name": "s", "step_order": 2**31},
    ):
        too_big = agent.post(
            f"/whitepapers/runs/{run_id}/finalize", {"steps": [step]}, format="json"
        )
        assert too_big.status_code == 400, step
    assert not WhitepaperAnalysisStep.objects.filter(run__run_id=run_id, step_name="s").exists()
    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.status == "agentrun_dispatched"
    assert not hasattr(run, "synthesis")
    # an operator finalizing a run that does not exist (a run token names an existing run)
    operator = APIClient()
    operator.force_authenticate(_operator())
    missing = operator.post("/whitepapers/runs/wp-nope/finalize", {}, format="json")
    assert missing.status_code == 404


def test_requeue_after_a_failed_agentrun_dispatches_the_next_attempt(
    workflow, control, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    run_id = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks).json()[
        "run_id"
    ]
    keyword = comment_payload(url=url, text="Please Research Whitepaper again")

    alive = post_event(control, keyword, django_capture_on_commit_callbacks)
    assert alive.json()["reason"] == "already_dispatched"
    assert len(workflow.jangar.submits()) == 1

    workflow.agent(run_id).post(
        f"/whitepapers/runs/{run_id}/finalize",
        {"status": "failed", "failure_reason": "agent crashed"},
        format="json",
    )
    requeued = post_event(control, keyword, django_capture_on_commit_callbacks)
    assert requeued.status_code == 202
    assert requeued.json()["reason"] == "requeued"

    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.status == "agentrun_dispatched"
    assert run.dispatch_attempt == 2
    assert run.trigger_source == "github_issue_comment_api"
    assert run.trigger_actor == "maintainer"
    attempts = list(
        run.agentruns.order_by("attempt").values_list("attempt", "status", "idempotency_key")
    )
    assert attempts == [(1, "failed", run_id), (2, "queued", f"{run_id}-retry-2")]
    second = workflow.jangar.submits()[-1]
    assert second.headers["idempotency-key"] == f"{run_id}-retry-2"
    assert second.json()["parameters"]["head"] == f"codex/whitepaper-{run_id[-16:]}-retry-2"
    assert run.steps.filter(step_name="requeue_request", attempt=2).count() == 1

    # completed runs stay completed
    # the second attempt's agent finalizes with the token its own AgentRun received
    assert workflow.finalize_token(run_id) == run_token(run_id, 2)
    workflow.agent(run_id).post(
        f"/whitepapers/runs/{run_id}/finalize", {"status": "completed"}, format="json"
    )
    assert WhitepaperAnalysisRun.objects.get(run_id=run_id).status == "completed"
    done = post_event(control, keyword, django_capture_on_commit_callbacks)
    assert done.json()["reason"] == "already_completed"
    assert len(workflow.jangar.submits()) == 2


def test_requeue_of_a_failed_download_retries_it(
    workflow, control, django_capture_on_commit_callbacks
):
    url = workflow.host.put("later.pdf", b"", status=404)
    first = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks).json()
    assert first["reason"] == "pdf_http_error"
    keyword = comment_payload(url=url, text="research whitepaper")

    still_missing = post_event(control, keyword, django_capture_on_commit_callbacks).json()
    assert still_missing["reason"] == "requeue_not_ready"
    assert "404" in still_missing["detail"]
    assert workflow.jangar.submits() == []

    workflow.host.put("later.pdf", PAPER)
    requeued = post_event(control, keyword, django_capture_on_commit_callbacks).json()
    assert requeued["reason"] == "requeued"
    run = WhitepaperAnalysisRun.objects.get(run_id=first["run_id"])
    assert run.status == "agentrun_dispatched"
    assert version_of(run).version_number == 2
    assert version_of(run).parse_status == "stored"
    assert run.document.versions.count() == 2
    assert len(workflow.jangar.submits()) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_X_WHITEPAPER_TOKEN": "wrong-token"},
        {"HTTP_AUTHORIZATION": "Token tg_unknown"},
    ],
)
def test_control_endpoints_need_the_token(workflow, headers):
    client = APIClient()
    client.credentials(**headers)
    for path in (
        "/whitepapers/events/github-issue",
        "/whitepapers/runs/wp-x/dispatch-agentrun",
        "/whitepapers/runs/wp-x/finalize",
    ):
        response = client.post(path, issue_payload(url="https://x.org/a.pdf"), format="json")
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "whitepaper_control_auth_required"
    assert client.get("/whitepapers/runs/wp-x").status_code == 401
    assert GithubIssueEvent.objects.count() == 0


def test_token_header_no_jangar_key_fallback_and_user_permissions(
    workflow, settings, django_capture_on_commit_callbacks
):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("reviewer", password="pw-reviewer-123")
    by_header = APIClient()
    by_header.credentials(HTTP_X_WHITEPAPER_TOKEN="wp-control-token")
    payload = issue_payload(url=None)
    assert post_event(by_header, payload, django_capture_on_commit_callbacks).status_code == 200

    # JANGAR_API_KEY is torghut's credential towards Jangar, not a key to torghut's endpoints
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = ""
    settings.JANGAR_API_KEY = "jangar-key"
    by_jangar_key = APIClient()
    by_jangar_key.credentials(HTTP_AUTHORIZATION="Bearer jangar-key")
    refused = post_event(by_jangar_key, payload, django_capture_on_commit_callbacks)
    assert refused.status_code == 401

    signed_in = APIClient()
    signed_in.force_authenticate(user)
    denied = signed_in.post("/whitepapers/events/github-issue", payload, format="json")
    assert denied.status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="change_whitepaperanalysisrun"))
    user = type(user).objects.get(pk=user.pk)  # drop the permission cache
    signed_in.force_authenticate(user)
    assert post_event(signed_in, payload, django_capture_on_commit_callbacks).status_code == 200
    assert GithubIssueEvent.objects.count() == 2


def test_status_endpoint(workflow, control, django_capture_on_commit_callbacks):
    url = workflow.host.put("momentum.pdf", PAPER)
    post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    # anyone: the health summary only (tests/security/test_status_disclosure.py)
    assert APIClient().get("/whitepapers/status").json() == {"ok": True, "workflow_enabled": True}
    viewer = APIClient()
    viewer.force_authenticate(_operator("view_whitepaperanalysisrun"))
    body = viewer.get("/whitepapers/status").json()
    assert body["ok"] is True
    assert body["workflow_enabled"] is True
    assert body["kafka_enabled"] is False
    assert body["inngest_enabled"] is False
    assert body["worker_running"] is False
    assert body["requeue_comment_keyword"] == "research whitepaper"
    assert body["control_auth_enabled"] is True
    assert body["runs_by_status"] == {"agentrun_dispatched": 1}
    assert body["events_pending"] == 0
    assert body["storage"]["backend"] == "s3"


def test_jangar_bearer_key_is_sent(workflow, control, settings, django_capture_on_commit_callbacks):
    workflow.jangar.api_key = "jangar-secret"
    settings.JANGAR_API_KEY = "jangar-secret"
    url = workflow.host.put("momentum.pdf", PAPER)
    post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert workflow.jangar.submits()[0].headers["authorization"] == "Bearer jangar-secret"
    assert WhitepaperCodexAgentRun.objects.count() == 1


def test_jangar_rejection_is_not_retried(
    workflow, control, settings, django_capture_on_commit_callbacks
):
    workflow.jangar.api_key = "expected-key"
    url = workflow.host.put("momentum.pdf", PAPER)
    post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert len(workflow.jangar.submits()) == 1
    run = WhitepaperAnalysisRun.objects.get()
    assert run.status == "failed"
    assert "HTTP 401" in run.failure_reason


def test_unknown_jangar_answer_is_terminal(workflow, control, django_capture_on_commit_callbacks):
    workflow.jangar.inject(Fault("POST", "/v1/agent-runs", status=201, body={"ok": True}))
    url = workflow.host.put("momentum.pdf", PAPER)
    post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    run = WhitepaperAnalysisRun.objects.get()
    assert run.status == "failed"
    assert "resource.metadata.name" in run.failure_reason
    assert len(workflow.jangar.submits()) == 1


def test_openapi_describes_the_whitepaper_endpoints(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = set(schema["paths"])
    assert {
        "/whitepapers/status",
        "/whitepapers/events/github-issue",
        "/whitepapers/webhooks/github",
        "/whitepapers/runs/{run_id}",
        "/whitepapers/runs/{run_id}/dispatch-agentrun",
        "/whitepapers/runs/{run_id}/finalize",
    } <= paths
    assert "whitepaperToken" in schema["components"]["securitySchemes"]
    finalize = schema["paths"]["/whitepapers/runs/{run_id}/finalize"]["post"]
    assert {"whitepaperRunToken": []} in finalize["security"]
    assert {"whitepaperToken": []} not in finalize["security"]
    dispatch = schema["paths"]["/whitepapers/runs/{run_id}/dispatch-agentrun"]["post"]
    assert {"whitepaperToken": []} in dispatch["security"]
