"""Issue #18: anonymous `GET /whitepapers/status` showed the storage endpoint, the bucket and the
run and event counts. Anyone now gets a health summary; the detail needs a signed-in user with a
whitepapers run permission (view or change)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from whitepapers.models import DocumentSource, WhitepaperAnalysisRun, WhitepaperDocument

pytestmark = pytest.mark.django_db

ENDPOINT = "http://127.0.0.1:7480"
BUCKET = "torghut-disclosure-bucket"
WORKFLOW_TOKEN = "wf-token-for-status-tests-0123456789"  # noqa: S105
HEALTH = {"ok": True, "workflow_enabled": True}


@pytest.fixture
def configured(settings, relaxed_throttles) -> None:
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = WORKFLOW_TOKEN
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "endpoint_url": ENDPOINT,
                "bucket_name": BUCKET,
                "access_key": "status-test-access",
                "secret_key": "status-test-secret",
                "region_name": "us-east-1",
            },
        },
    }
    document = WhitepaperDocument.objects.create(
        document_key="d15" + "0" * 37,
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier="proompteng/lab#15",
    )
    WhitepaperAnalysisRun.objects.create(run_id="wp-d15" + "0" * 21, document=document)


def _user(*codenames: str) -> Any:
    user = get_user_model().objects.create_user("status-" + "-".join(codenames or ("none",)))
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return type(user).objects.get(pk=user.pk)


def _assert_health_only(response: Any) -> None:
    assert response.status_code == 200, response.content
    assert response.json() == HEALTH
    text = response.content.decode()
    for leaked in (ENDPOINT, "7480", BUCKET, "storage", "runs_by_status", "events_pending"):
        assert leaked not in text, leaked


def test_anonymous_status_shows_no_storage_nor_counts(configured):
    _assert_health_only(APIClient().get("/whitepapers/status"))


def test_a_user_without_a_whitepapers_permission_gets_the_health_summary(configured):
    client = APIClient()
    client.force_authenticate(_user())
    _assert_health_only(client.get("/whitepapers/status"))


def test_the_workflow_token_gets_the_health_summary(configured):
    """The control token is for the agents' control calls; status detail is for people."""
    client = APIClient()
    client.credentials(HTTP_X_WHITEPAPER_TOKEN=WORKFLOW_TOKEN)
    _assert_health_only(client.get("/whitepapers/status"))


@pytest.mark.parametrize("codename", ["view_whitepaperanalysisrun", "change_whitepaperanalysisrun"])
def test_a_user_who_may_see_runs_gets_the_detail(configured, codename):
    client = APIClient()
    client.force_authenticate(_user(codename))
    body = client.get("/whitepapers/status").json()
    assert {k: body[k] for k in HEALTH} == HEALTH
    assert body["storage"] == {"backend": "s3", "bucket": BUCKET, "endpoint": ENDPOINT}
    assert body["runs_by_status"] == {"queued": 1}
    assert body["events_pending"] == 0
    assert body["control_auth_enabled"] is True
