"""Object storage unreachable during intake: a queued processing keeps the event pending and
raises `StorageUnavailable` for a later attempt; only the event's last allowed attempt records a
failed run. The control API (which answers at once) records the failure at once."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.config import Config

from tests.conftest import free_port
from whitepapers.models import (
    GithubIssueEvent,
    WhitepaperAnalysisRun,
)
from whitepapers.services.intake import (
    StorageUnavailable,
    github_event_process,
    github_event_record,
)
from whitepapers.storage import pdf_object_key
from whitepapers.tests.conftest import s3_options
from whitepapers.tests.test_workflow import PAPER, post_event
from whitepapers.tests.workflow import intake_row_counts, issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def _storage_down(settings, bucket: str) -> str:
    """The artifacts storage at a port nothing listens on (botocore's own retries off)."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    client_config = Config(
        retries={"total_max_attempts": 1},
        s3={"addressing_style": "path"},
        signature_version="s3v4",
    )
    options = {**s3_options(endpoint, bucket), "client_config": client_config}
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    return endpoint


def _storage_up(settings, workflow) -> None:
    endpoint = workflow.s3.meta.endpoint_url
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": s3_options(endpoint, workflow.bucket),
        },
    }


NOTHING = {"documents": 0, "versions": 0, "contents": 0, "runs": 0, "agentruns": 0}


def _recorded(url: str) -> GithubIssueEvent:
    return github_event_record(source="webhook", payload=issue_payload(url=url), process=False)


def _unavailable(event: GithubIssueEvent, capture: Any) -> StorageUnavailable:
    with capture(execute=True), pytest.raises(StorageUnavailable) as info:
        github_event_process(event.pk, retry_unavailable_storage=True)
    return info.value


def test_unreachable_storage_keeps_the_event_pending_until_its_last_attempt(
    workflow, settings, django_capture_on_commit_callbacks
):
    settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS = 3
    endpoint = _storage_down(settings, workflow.bucket)
    url = workflow.host.put("momentum.pdf", PAPER)
    event = _recorded(url)
    key = pdf_object_key(hashlib.sha256(PAPER).hexdigest())

    for attempt in (1, 2):
        error = _unavailable(event, django_capture_on_commit_callbacks)
        assert error.reason == "storage_upload_failed"
        event.refresh_from_db()
        assert (event.status, event.attempts, event.reason) == ("pending", attempt, "")
        assert event.detail.startswith(
            f"attempt {attempt}: storage_upload_failed: s3://{workflow.bucket}/{key}: "
            f'EndpointConnectionError: Could not connect to the endpoint URL: "{endpoint}/'
        ), event.detail
        assert intake_row_counts() == NOTHING  # not a half-written row

    with django_capture_on_commit_callbacks(execute=True):
        outcome = github_event_process(event.pk, retry_unavailable_storage=True)
    assert (outcome.accepted, outcome.reason) == (False, "storage_upload_failed")
    event.refresh_from_db()
    assert (event.status, event.attempts, event.reason) == ("processed", 3, "storage_upload_failed")
    run = WhitepaperAnalysisRun.objects.get()
    assert (run.status, run.failure_code) == ("failed", "storage_upload_failed")
    assert intake_row_counts() == {**NOTHING, "documents": 1, "versions": 1, "runs": 1}
    assert workflow.objects() == []
    assert workflow.jangar.submits() == []


def test_storage_back_before_the_last_attempt_completes_the_intake_once(
    workflow, settings, django_capture_on_commit_callbacks
):
    settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS = 3
    _storage_down(settings, workflow.bucket)
    url = workflow.host.put("momentum.pdf", PAPER)
    event = _recorded(url)
    _unavailable(event, django_capture_on_commit_callbacks)

    _storage_up(settings, workflow)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = github_event_process(event.pk, retry_unavailable_storage=True)
    assert (outcome.accepted, outcome.reason) == (True, "accepted")
    event.refresh_from_db()
    assert (event.status, event.attempts, event.reason) == ("processed", 2, "accepted")
    run = WhitepaperAnalysisRun.objects.get()
    assert run.status == "agentrun_dispatched"
    assert intake_row_counts() == {
        "documents": 1,
        "versions": 1,
        "contents": 1,
        "runs": 1,
        "agentruns": 1,
    }
    assert len(workflow.objects()) == 1
    assert len(workflow.jangar.submits()) == 1
    # processed: a late retry (or a sweep) of the same event changes nothing
    again = github_event_process(event.pk, retry_unavailable_storage=True)
    assert (again.reason, again.run_id) == ("accepted", run.run_id)
    assert intake_row_counts() == {
        "documents": 1,
        "versions": 1,
        "contents": 1,
        "runs": 1,
        "agentruns": 1,
    }


def test_refused_storage_is_not_retried(workflow, settings, django_capture_on_commit_callbacks):
    """A wrong secret is not an outage: the failure is recorded on the first attempt."""
    _storage_up(settings, workflow)
    options = settings.STORAGES["artifacts"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**options, "secret_key": "not-the-secret"},
        },
    }
    event = _recorded(workflow.host.put("momentum.pdf", PAPER))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = github_event_process(event.pk, retry_unavailable_storage=True)
    assert outcome.reason == "storage_upload_failed"
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 1)
    assert WhitepaperAnalysisRun.objects.get().status == "failed"


def test_the_control_api_records_the_failure_at_once(
    workflow, control, settings, django_capture_on_commit_callbacks
):
    """The API answers with the outcome, so it does not wait for storage to come back."""
    _storage_down(settings, workflow.bucket)
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["reason"]) == (False, "storage_upload_failed")
    event = GithubIssueEvent.objects.get()
    assert (event.status, event.attempts) == ("processed", 1)
    assert WhitepaperAnalysisRun.objects.get().failure_code == "storage_upload_failed"
