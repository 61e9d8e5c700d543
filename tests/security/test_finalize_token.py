"""Issue #18: finalize takes the run's own token, not a global one.

Findings covered: the workflow control token could finalize any run; JANGAR_API_KEY was accepted
as a fallback on every inbound control endpoint; one run's caller could finalize another run;
`approved_by` was taken from the agent's payload; an artifact row keyed by (bucket, key) moved
to whichever run named it last.

Runs are dispatched through the API to the Jangar stand-in (tests/servers/jangar_server.py) and
the token is read from the request Jangar received, as the AgentRun gets it.

`whitepapers.run_tokens` is imported inside the tests that need it, so that the findings' tests
also run (and fail) against the code before the fix.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from tests.servers.jangar_server import JangarServer
from whitepapers.models import (
    DocumentSource,
    ParseStatus,
    WhitepaperAnalysisRun,
    WhitepaperArtifact,
    WhitepaperCodexAgentRun,
    WhitepaperDocument,
    WhitepaperDocumentVersion,
)

pytestmark = pytest.mark.django_db

WORKFLOW_TOKEN = "wf-token-for-finalize-tests-0123456789"  # noqa: S105
JANGAR_KEY = "jangar-key-for-finalize-tests-0123456789"
ARTIFACT = {
    "artifact_type": "design_doc",
    "ceph_bucket": "torghut-whitepapers",
    "ceph_object_key": "runs/shared/design.md",
    "size_bytes": 2048,
}


def _payload(summary: str, **verdict: Any) -> dict[str, Any]:
    return {
        "status": "completed",
        "synthesis": {"executive_summary": summary},
        "verdict": {"verdict": "implement", "rationale": summary, **verdict},
        "artifacts": [{**ARTIFACT, "metadata": {"by": summary}}],
        "steps": [{"step_name": "agent_analysis", "step_order": 3, "status": "completed"}],
    }


def _new_run(n: int) -> WhitepaperAnalysisRun:
    document = WhitepaperDocument.objects.create(
        document_key=f"{n:040x}",
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier=f"proompteng/lab#{n}",
    )
    version = WhitepaperDocumentVersion.objects.create(
        document=document,
        version_number=1,
        parse_status=ParseStatus.STORED,
        ceph_bucket="torghut-whitepapers",
        ceph_object_key=f"raw/checksum/{n:064x}/source.pdf",
        checksum_sha256=f"{n:064x}",
    )
    return WhitepaperAnalysisRun.objects.create(
        run_id=f"wp-{n:024x}",
        document=document,
        document_version=version,
        orchestration_context={"repository": "proompteng/lab", "issue_number": n},
    )


def _client(token: str = "", *, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    else:
        client.credentials(HTTP_X_WHITEPAPER_TOKEN=token)
    return client


def _operator(username: str = "wp-operator") -> APIClient:
    user = get_user_model().objects.create_user(username, password="pw-operator-123")
    user.user_permissions.add(Permission.objects.get(codename="change_whitepaperanalysisrun"))
    client = APIClient()
    client.force_authenticate(type(user).objects.get(pk=user.pk))
    return client


class Dispatched:
    def __init__(self, jangar: JangarServer) -> None:
        self.jangar = jangar

    def run(self, n: int) -> tuple[str, str]:
        """A run dispatched through the API: (run id, the token its AgentRun received)."""
        run_id = _new_run(n).run_id
        response = _client(WORKFLOW_TOKEN).post(f"/whitepapers/runs/{run_id}/dispatch-agentrun")
        assert response.status_code == 200, response.content
        return run_id, self.token(run_id)

    def token(self, run_id: str) -> str:
        sent = [s.json()["parameters"] for s in self.jangar.submits()]
        return str([p for p in sent if p["runId"] == run_id][-1].get("finalizeToken", ""))


@pytest.fixture
def dispatched(settings, relaxed_throttles) -> Iterator[Dispatched]:
    jangar = JangarServer(api_key=JANGAR_KEY)
    jangar.start()
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = WORKFLOW_TOKEN
    settings.JANGAR_API_KEY = JANGAR_KEY
    settings.WHITEPAPER_AGENTRUN_SUBMIT_URL = f"{jangar.url}/v1/agent-runs"
    settings.WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = 1
    try:
        yield Dispatched(jangar)
    finally:
        jangar.stop()


def _state() -> tuple[Any, ...]:
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("whitepapers").get_models()
    }
    runs = list(
        WhitepaperAnalysisRun.objects.order_by("run_id").values_list(
            "run_id", "status", "completed_at", "result_payload"
        )
    )
    artifacts = list(WhitepaperArtifact.objects.order_by("pk").values())
    return counts, runs, artifacts


def _finalize(client: APIClient, run_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/whitepapers/runs/{run_id}/finalize", body, format="json")


def _assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "whitepaper_control_auth_required"


# -- the global token ----------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["bearer", "x-whitepaper-token"])
def test_the_workflow_token_no_longer_finalizes_a_run(dispatched, header):
    run_id, _ = dispatched.run(1)
    before = _state()
    _assert_refused(_finalize(_client(WORKFLOW_TOKEN, header=header), run_id, _payload("x")))
    assert _state() == before
    # it still opens the control endpoints it is for (run detail here)
    detail = _client(WORKFLOW_TOKEN, header=header).get(f"/whitepapers/runs/{run_id}")
    assert detail.status_code == 200


def test_jangar_api_key_opens_no_inbound_control_endpoint(dispatched, settings):
    run_id, _ = dispatched.run(1)
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = ""  # the old code fell back to JANGAR_API_KEY
    before = _state()
    for header in ("bearer", "x-whitepaper-token"):
        client = _client(JANGAR_KEY, header=header)
        event = {"action": "opened", "issue": {"number": 9}, "repository": {"full_name": "a/b"}}
        _assert_refused(client.post("/whitepapers/events/github-issue", event, format="json"))
        _assert_refused(client.post(f"/whitepapers/runs/{run_id}/dispatch-agentrun"))
        _assert_refused(_finalize(client, run_id, _payload("x")))
        _assert_refused(client.get(f"/whitepapers/runs/{run_id}"))
    assert _state() == before
    # torghut still presents it to Jangar: that is what it is for
    assert dispatched.jangar.submits()[0].headers["authorization"] == f"Bearer {JANGAR_KEY}"


# -- per-run tokens ------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["bearer", "x-whitepaper-token"])
def test_a_run_token_finalizes_its_own_run_and_no_other(dispatched, header):
    run_a, token_a = dispatched.run(1)
    run_b, token_b = dispatched.run(2)
    assert token_a != token_b
    before = _state()
    _assert_refused(_finalize(_client(token_a, header=header), run_b, _payload("a on b")))
    _assert_refused(_finalize(_client(token_a, header=header), "wp-missing", _payload("x")))
    assert _state() == before, "run A's token wrote to run B"
    assert not WhitepaperAnalysisRun.objects.get(run_id=run_b).steps.filter(
        step_name="agent_analysis"
    )

    ok = _finalize(_client(token_a, header=header), run_a, _payload("a on a"))
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "completed"
    run = WhitepaperAnalysisRun.objects.get(run_id=run_a)
    assert (run.status, run.synthesis.executive_summary) == ("completed", "a on a")
    assert WhitepaperAnalysisRun.objects.get(run_id=run_b).status == "agentrun_dispatched"


def test_the_token_is_bound_to_run_and_attempt(dispatched):
    from whitepapers.run_tokens import run_token, run_token_verify

    run_id, token = dispatched.run(1)
    assert token == run_token(run_id, 1)
    assert token.startswith("wprun.1.")
    assert run_token_verify(run_id=run_id, token=token) == 1
    assert run_token_verify(run_id="wp-" + "0" * 24, token=token) is None
    # an attempt the run has not reached was never handed out, and opens nothing
    assert run_token_verify(run_id=run_id, token=run_token(run_id, 2)) is None
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (forged, "wprun.1", "wprun.x." + token[8:], "wprun.0." + token[8:], WORKFLOW_TOKEN):
        assert run_token_verify(run_id=run_id, token=bad) is None, bad
    _assert_refused(_finalize(_client(forged), run_id, _payload("forged")))


def test_a_requeued_run_accepts_each_dispatched_attempt(dispatched):
    from whitepapers.run_tokens import run_token, run_token_verify

    run_id, first = dispatched.run(1)
    dispatched.jangar.set_phase(run_id, "Failed")
    WhitepaperCodexAgentRun.objects.filter(run__run_id=run_id).update(status="failed")
    again = _client(WORKFLOW_TOKEN).post(f"/whitepapers/runs/{run_id}/dispatch-agentrun")
    assert again.json()["attempt"] == 2
    second = dispatched.token(run_id)
    assert second == run_token(run_id, 2) != first
    assert run_token_verify(run_id=run_id, token=first) == 1
    ok = _finalize(_client(second), run_id, {"status": "completed"})
    assert ok.status_code == 200, ok.content


def test_the_token_is_compared_in_constant_time(dispatched, monkeypatch):
    from whitepapers.run_tokens import run_token_verify

    run_id, token = dispatched.run(1)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert run_token_verify(run_id=run_id, token=token) == 1
    assert (token.encode(), token.encode()) in calls


def test_the_token_is_stored_and_logged_only_redacted(dispatched, caplog):
    from whitepapers.run_tokens import token_redacted

    caplog.set_level("DEBUG")
    run_id, token = dispatched.run(1)
    agentrun = WhitepaperCodexAgentRun.objects.get(run__run_id=run_id)
    assert agentrun.input_context["finalizeToken"] == "[redacted]"
    assert token not in agentrun.prompt_text
    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    stored = [agentrun.input_context, agentrun.output_context, run.request_payload]
    for step in run.steps.all():
        stored += [step.input_json, step.output_json, step.error_json]
    assert token not in repr(stored)
    assert token not in caplog.text
    assert _finalize(_client(token), run_id, {"status": "completed"}).status_code == 200
    assert token not in caplog.text
    assert token_redacted({"a": [{"finalizeToken": token, "b": 1}]}) == {
        "a": [{"finalizeToken": "[redacted]", "b": 1}]
    }


# -- approvals -----------------------------------------------------------------------------------
def test_approved_by_from_the_agent_is_ignored(dispatched):
    run_id, token = dispatched.run(1)
    response = _finalize(_client(token), run_id, _payload("agent", approved_by="the-ceo"))
    assert response.status_code == 200, response.content
    verdict = WhitepaperAnalysisRun.objects.get(run_id=run_id).verdict
    assert (verdict.verdict, verdict.approved_by, verdict.approved_at) == ("implement", "", None)


def test_an_approval_is_recorded_under_the_operators_own_name(dispatched):
    run_id, token = dispatched.run(1)
    operator = _operator("wp-approver")
    response = _finalize(operator, run_id, _payload("operator", approved_by="someone-else"))
    assert response.status_code == 200, response.content
    verdict = WhitepaperAnalysisRun.objects.get(run_id=run_id).verdict
    assert verdict.approved_by == "wp-approver"
    approved_at = verdict.approved_at
    assert approved_at is not None
    # the agent reporting the same verdict again neither forges nor clears the approval
    again = _finalize(_client(token), run_id, _payload("operator", approved_by="the-ceo"))
    assert again.status_code == 200, again.content
    verdict.refresh_from_db()
    assert (verdict.approved_by, verdict.approved_at) == ("wp-approver", approved_at)


def test_a_verdict_changed_after_its_approval_is_no_longer_approved(dispatched):
    run_id, token = dispatched.run(1)
    operator = _operator("wp-approver")
    assert (
        _finalize(operator, run_id, _payload("read by a person", approved_by="x")).status_code
        == 200
    )
    changed = _payload("rewritten by the agent", approved_by="the-ceo")
    changed["verdict"]["verdict"] = "reject"
    response = _finalize(_client(token), run_id, changed)
    assert response.status_code == 200, response.content
    verdict = WhitepaperAnalysisRun.objects.get(run_id=run_id).verdict
    assert (verdict.verdict, verdict.rationale, verdict.approved_by, verdict.approved_at) == (
        "reject",
        "rewritten by the agent",
        "",
        None,
    )


# -- artifacts keyed by run ----------------------------------------------------------------------
@pytest.mark.parametrize("caller", ["agent", "operator"])
def test_an_artifact_of_run_a_is_not_moved_by_run_b(dispatched, caller):
    run_a, token_a = dispatched.run(1)
    run_b, token_b = dispatched.run(2)
    operator = _operator() if caller == "operator" else None
    as_a = operator or _client(token_a)
    as_b = operator or _client(token_b)
    assert _finalize(as_a, run_a, _payload("a")).status_code == 200
    row_a = WhitepaperArtifact.objects.get(run__run_id=run_a)
    before = WhitepaperArtifact.objects.filter(pk=row_a.pk).values().get()

    # B names A's object: B gets its own row, A's row stays A's, unchanged
    response = _finalize(as_b, run_b, _payload("b"))
    assert response.status_code == 200, response.content
    assert WhitepaperArtifact.objects.filter(pk=row_a.pk).values().get() == before
    assert before["run_id"] == WhitepaperAnalysisRun.objects.get(run_id=run_a).pk
    assert before["metadata"] == {"by": "a"}
    row_b = WhitepaperArtifact.objects.get(run__run_id=run_b)
    assert row_b.pk != row_a.pk
    assert (row_b.ceph_bucket, row_b.ceph_object_key, row_b.metadata) == (
        ARTIFACT["ceph_bucket"],
        ARTIFACT["ceph_object_key"],
        {"by": "b"},
    )
    assert WhitepaperArtifact.objects.count() == 2
    # and A finalizing again updates its own row, not B's
    assert _finalize(as_a, run_a, _payload("a2")).status_code == 200
    assert WhitepaperArtifact.objects.get(pk=row_a.pk).metadata == {"by": "a2"}
    assert WhitepaperArtifact.objects.get(pk=row_b.pk).metadata == {"by": "b"}


def test_the_database_keys_artifacts_by_run():
    constraints = {c.name: c for c in WhitepaperArtifact._meta.constraints}
    assert "wp_artifact_object_unique" not in constraints
    assert tuple(constraints["wp_artifact_run_object_unique"].fields) == (  # type: ignore[attr-defined]
        "run",
        "ceph_bucket",
        "ceph_object_key",
    )


def test_token_is_an_hmac_of_run_and_attempt_under_secret_key(settings):
    from whitepapers.run_tokens import run_token

    token = run_token("wp-" + "a" * 24, 3)
    settings.SECRET_KEY = "another-secret-key-" + "s" * 40
    assert run_token("wp-" + "a" * 24, 3) != token
    assert len(token.split(".")[2]) == len(hashlib.sha256().hexdigest())
