"""The run review page and its actions, through the real admin."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth import get_user_model

from whitepapers.models import WhitepaperAnalysisRun
from whitepapers.tests.test_workflow import PAPER, post_event
from whitepapers.tests.workflow import issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def admin_client_user(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "pw-ops-12345")
    client.force_login(user)
    return client


def test_run_page_shows_paper_link_steps_and_agentrun(
    workflow, control, admin_client_user, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    run = WhitepaperAnalysisRun.objects.get()

    page = admin_client_user.get(f"/admin/whitepapers/whitepaperanalysisrun/{run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert run.run_id in html
    assert "codex-whitepaper-agent-0001" in html
    assert "issue_intake" in html and "agentrun_dispatch" in html
    # the paper link is a presigned URL that really serves the stored PDF
    assert run.document_version is not None
    assert run.document_version.ceph_object_key in html
    hrefs = [h.split('"', 1)[0].replace("&amp;", "&") for h in html.split('href="')[1:]]
    signed = [h for h in hrefs if "X-Amz-Signature" in h]
    assert len(signed) == 1, hrefs
    assert requests.get(signed[0], timeout=5).content == PAPER

    listing = admin_client_user.get(
        "/admin/whitepapers/whitepaperanalysisrun/?status=agentrun_dispatched&repository=proompteng/lab"
    )
    assert listing.status_code == 200
    assert run.run_id in listing.content.decode()


def test_requeue_action(workflow, control, admin_client_user, django_capture_on_commit_callbacks):
    url = workflow.host.put("momentum.pdf", PAPER)
    run_id = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks).json()[
        "run_id"
    ]
    workflow.agent(run_id).post(
        f"/whitepapers/runs/{run_id}/finalize", {"status": "failed"}, format="json"
    )
    run = WhitepaperAnalysisRun.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_user.post(
            "/admin/whitepapers/whitepaperanalysisrun/",
            {"action": "requeue_runs", "index": 0, "_selected_action": [run.pk]},
            follow=True,
        )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [f"{run_id}: requeued"]
    run.refresh_from_db()
    assert (run.status, run.dispatch_attempt) == ("agentrun_dispatched", 2)
    assert run.trigger_source == "admin_requeue"
    assert len(workflow.jangar.submits()) == 2
