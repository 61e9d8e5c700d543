"""Whitepaper workflow settings: each one, set to two values, changes what the intake accepts or
what is submitted to Jangar (the stand-in server records the AgentRun body)."""

from __future__ import annotations

from typing import Any

import pytest

from whitepapers.models import WhitepaperAnalysisRun
from whitepapers.tests.pdfs import make_pdf
from whitepapers.tests.workflow import comment_payload, issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]

PAPER = make_pdf(["Settings coverage", "One page"])
DEFAULTS = {
    "WHITEPAPER_AGENTRUN_NAMESPACE": "agents",
    "WHITEPAPER_AGENT_NAME": "codex-whitepaper-agent",
    "WHITEPAPER_AGENTRUN_VCS_REF": "github",
    "WHITEPAPER_AGENTRUN_SECRET_BINDING": "codex-whitepaper-github-token",
    "WHITEPAPER_AGENTRUN_TTL_SECONDS": 7200,
    "WHITEPAPER_DEFAULT_BASE_BRANCH": "main",
    "WHITEPAPER_ALLOWED_BASE_BRANCHES": ["main"],
}
CUSTOM = {
    "WHITEPAPER_AGENTRUN_NAMESPACE": "research",
    "WHITEPAPER_AGENT_NAME": "paper-reader",
    "WHITEPAPER_AGENTRUN_VCS_REF": "gitea",
    "WHITEPAPER_AGENTRUN_SECRET_BINDING": "reader-token",
    "WHITEPAPER_AGENTRUN_TTL_SECONDS": 600,
    "WHITEPAPER_DEFAULT_BASE_BRANCH": "develop",
    "WHITEPAPER_ALLOWED_BASE_BRANCHES": ["develop"],
}


def _post(control, payload: dict[str, Any], capture) -> dict[str, Any]:
    with capture(execute=True):
        response = control.post("/whitepapers/events/github-issue", payload, format="json")
    return dict(response.json())


def _body(url: str, *, start: str, end: str, base_branch: bool = True) -> str:
    lines = ["workflow: whitepaper-analysis-v1", f"attachment_url: {url}"]
    if base_branch:
        lines.insert(1, "base_branch: main")
    return "Please analyse.\n\n" + "\n".join([start, *lines, end]) + "\n"


@pytest.mark.parametrize("values", [DEFAULTS, CUSTOM], ids=["defaults", "custom"])
def test_agentrun_settings_shape_the_submitted_agentrun(
    workflow, control, settings, django_capture_on_commit_callbacks, values
):
    for name, value in values.items():
        setattr(settings, name, value)
    url = workflow.host.put("p.pdf", PAPER)
    body = _body(
        url,
        start=settings.WHITEPAPER_ISSUE_MARKER_START,
        end=settings.WHITEPAPER_ISSUE_MARKER_END,
        base_branch=False,
    )
    assert _post(control, issue_payload(url=url, body=body), django_capture_on_commit_callbacks)[
        "accepted"
    ]
    sent = workflow.jangar.submits()[0].json()
    assert sent["namespace"] == values["WHITEPAPER_AGENTRUN_NAMESPACE"]
    assert sent["agentRef"] == {"name": values["WHITEPAPER_AGENT_NAME"]}
    assert sent["vcsRef"] == {"name": values["WHITEPAPER_AGENTRUN_VCS_REF"]}
    assert sent["implementation"]["vcsRef"] == {"name": values["WHITEPAPER_AGENTRUN_VCS_REF"]}
    assert sent["policy"] == {"secretBindingRef": values["WHITEPAPER_AGENTRUN_SECRET_BINDING"]}
    assert sent["ttlSecondsAfterFinished"] == values["WHITEPAPER_AGENTRUN_TTL_SECONDS"]
    # no base_branch in the issue's marker block: the default base branch
    assert sent["parameters"]["base"] == values["WHITEPAPER_DEFAULT_BASE_BRANCH"]


def test_issue_markers_delimit_the_block_the_intake_reads(
    workflow, control, settings, django_capture_on_commit_callbacks
):
    url = workflow.host.put("p.pdf", PAPER)
    custom = _body(url, start="<!-- PAPER -->", end="<!-- /PAPER -->")
    refused = _post(
        control, issue_payload(url=url, body=custom), django_capture_on_commit_callbacks
    )
    assert (refused["accepted"], WhitepaperAnalysisRun.objects.count()) == (False, 0)
    settings.WHITEPAPER_ISSUE_MARKER_START = "<!-- PAPER -->"
    settings.WHITEPAPER_ISSUE_MARKER_END = "<!-- /PAPER -->"
    accepted = _post(
        control, issue_payload(url=url, body=custom, number=43), django_capture_on_commit_callbacks
    )
    assert (accepted["accepted"], accepted["reason"]) == (True, "accepted")
    assert WhitepaperAnalysisRun.objects.count() == 1


def test_requeue_comment_keyword_decides_which_comment_requeues(
    workflow, control, settings, django_capture_on_commit_callbacks
):
    url = workflow.host.put("p.pdf", PAPER)
    _post(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    comment = comment_payload(url=url, text="please run it again")
    first = _post(control, comment, django_capture_on_commit_callbacks)
    assert (first["accepted"], first["reason"]) == (False, "comment_without_requeue_keyword")
    settings.WHITEPAPER_REQUEUE_COMMENT_KEYWORD = "run it again"
    second = _post(control, comment, django_capture_on_commit_callbacks)
    assert second["reason"] != "comment_without_requeue_keyword"
