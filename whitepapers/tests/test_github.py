"""GitHub issue-event rules: normalization, marker, PDF URL, run id, requeue keyword."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from whitepapers.github import (
    SUPPORTED_WORKFLOW,
    IntakeRefused,
    IssueEvent,
    Marker,
    github_event_normalize,
    has_requeue_keyword,
    head_branch_for,
    idempotency_key_for,
    marker_parse,
    pdf_url_find,
    run_id_for,
    url_normalize,
)

START = "<!-- TORGHUT_WHITEPAPER:START -->"
END = "<!-- TORGHUT_WHITEPAPER:END -->"
PAPER_URL = "https://github.com/user-attachments/files/123/attention.pdf"
ISSUE_BODY = f"""Please analyse this paper.

{START}
workflow: whitepaper-analysis-v1
base_branch: main
{END}

[attention.pdf]({PAPER_URL})
"""


def issue_payload(action: str = "opened", **issue: Any) -> dict[str, Any]:
    return {
        "action": action,
        "issue": {
            "number": 42,
            "title": "Analyse: Attention is all you need",
            "html_url": "https://github.com/proompteng/lab/issues/42",
            "body": ISSUE_BODY,
            "user": {"login": "author"},
            **issue,
        },
        "repository": {"full_name": "proompteng/lab"},
        "sender": {"login": "octocat"},
    }


def comment_payload(action: str = "created", body: str = "Research whitepaper again") -> dict:
    payload = issue_payload()
    payload["action"] = action
    payload["comment"] = {"body": body, "user": {"login": "reviewer"}}
    del payload["sender"]
    return payload


def envelope(payload: Any, event: str, delivery: str = "d-1", **headers: str) -> dict[str, Any]:
    return {
        "headers": {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, **headers},
        "body": payload,
    }


def refused(raw: Any, **kwargs: Any) -> IntakeRefused:
    with pytest.raises(IntakeRefused) as info:
        github_event_normalize(raw, **kwargs)
    return info.value


# -- github_event_normalize -------------------------------------------------------------------


def test_envelope_issue_event_is_normalized_exactly():
    payload = issue_payload()
    event = github_event_normalize(envelope(payload, "issues", "3f0c-delivery"))
    assert event == IssueEvent(
        event="issues",
        action="opened",
        delivery_id="3f0c-delivery",
        repository="proompteng/lab",
        issue_number=42,
        issue_title="Analyse: Attention is all you need",
        issue_url="https://github.com/proompteng/lab/issues/42",
        issue_body=ISSUE_BODY,
        comment_body=None,
        actor="octocat",
        payload=payload,
        author_association="",  # the payload has none: no association is trusted
        label=None,
        issue_author="author",
        sender_type=None,
    )


def test_envelope_header_names_are_case_insensitive():
    raw = {
        "headers": {"x-github-event": "issues", "X-GITHUB-DELIVERY": "abc"},
        "body": issue_payload(),
    }
    event = github_event_normalize(raw)
    assert (event.event, event.delivery_id) == ("issues", "abc")


def test_envelope_body_may_be_a_json_string():
    payload = issue_payload()
    event = github_event_normalize(envelope(json.dumps(payload), "issues"))
    assert event.payload == payload
    assert event.issue_number == 42


def test_envelope_body_that_is_not_json_is_ignored():
    error = refused(envelope("{not json", "issues"))
    assert (error.reason, error.detail) == ("ignored_event", "envelope body is not valid JSON")


def test_envelope_body_that_is_not_an_object_is_ignored():
    assert refused(envelope([1, 2], "issues")).reason == "ignored_event"
    assert refused(envelope("[1, 2]", "issues")).reason == "ignored_event"


def test_explicit_arguments_win_over_the_envelope():
    raw = envelope(comment_payload(), "issues", "from-header")
    event = github_event_normalize(raw, event_name="issue_comment", delivery_id="from-arg")
    assert (event.event, event.delivery_id) == ("issue_comment", "from-arg")


def test_bare_payload_with_event_name_argument():
    event = github_event_normalize(issue_payload("edited"), event_name="issues", delivery_id="x")
    assert (event.event, event.action, event.delivery_id) == ("issues", "edited", "x")


@pytest.mark.parametrize("key", ["event", "event_name"])
def test_bare_payload_with_event_key(key):
    payload = {**comment_payload(), key: "issue_comment"}
    event = github_event_normalize(payload)
    assert event.event == "issue_comment"
    assert event.delivery_id is None


def test_event_inferred_from_comment_key():
    event = github_event_normalize(comment_payload("edited", "please RESEARCH WHITEPAPER"))
    assert event.event == "issue_comment"
    assert event.action == "edited"
    assert event.comment_body == "please RESEARCH WHITEPAPER"
    assert event.actor == "reviewer"  # no sender: the comment's author


def test_event_inferred_from_issue_key():
    event = github_event_normalize(issue_payload("reopened"))
    assert (event.event, event.action, event.comment_body) == ("issues", "reopened", None)


@pytest.mark.parametrize("action", ["opened", "edited", "reopened", "labeled"])
def test_accepted_issue_actions(action):
    assert github_event_normalize(issue_payload(action)).action == action


@pytest.mark.parametrize("action", ["closed", "deleted", "unlabeled", "assigned", None])
def test_other_issue_actions_are_ignored(action):
    error = refused(issue_payload(action), event_name="issues")
    assert (error.reason, error.detail) == (
        "ignored_event",
        f"issues action {action!r} is not handled",
    )


@pytest.mark.parametrize("action", ["created", "edited"])
def test_accepted_comment_actions(action):
    assert github_event_normalize(comment_payload(action)).action == action


def test_deleted_comment_is_ignored():
    error = refused(comment_payload("deleted"))
    assert (error.reason, error.detail) == (
        "ignored_event",
        "issue_comment action 'deleted' is not handled",
    )


@pytest.mark.parametrize("event", ["push", "pull_request", "ping"])
def test_other_events_are_ignored(event):
    error = refused(issue_payload(), event_name=event)
    assert (error.reason, error.detail) == ("ignored_event", f"event {event!r} is not handled")


def test_payload_without_issue_or_comment_is_ignored():
    error = refused({"action": "opened", "repository": {"full_name": "a/b"}})
    assert (error.reason, error.detail) == ("ignored_event", "event '<none>' is not handled")


@pytest.mark.parametrize("raw", [None, "issues", 42, ["issues"], b"{}"])
def test_non_object_input_is_ignored(raw):
    assert refused(raw).reason == "ignored_event"


@pytest.mark.parametrize("full_name", [None, "", "lab", "/lab", "owner/", "a/b/c", "own er/lab", 7])
def test_repository_must_be_owner_slash_repo(full_name):
    payload = issue_payload()
    payload["repository"] = {"full_name": full_name}
    error = refused(payload)
    assert (error.reason, error.detail) == (
        "ignored_event",
        "repository.full_name is missing or not owner/repo",
    )


def test_missing_repository_is_ignored():
    payload = issue_payload()
    del payload["repository"]
    assert refused(payload).reason == "ignored_event"


@pytest.mark.parametrize("number", [0, -3, "42", 4.2, True, None])
def test_issue_number_must_be_a_positive_int(number):
    error = refused(issue_payload(number=number))
    assert (error.reason, error.detail) == (
        "ignored_event",
        "issue.number is missing or not a positive integer",
    )


def test_issue_url_falls_back_to_the_repository_issue_url():
    payload = issue_payload()
    del payload["issue"]["html_url"]
    event = github_event_normalize(payload)
    assert event.issue_url == "https://github.com/proompteng/lab/issues/42"


def test_null_issue_body_and_title_become_empty_strings():
    event = github_event_normalize(issue_payload(body=None, title=None))
    assert (event.issue_body, event.issue_title) == ("", "")


def test_payload_is_not_modified():
    payload = issue_payload()
    before = copy.deepcopy(payload)
    github_event_normalize(envelope(payload, "issues"))
    assert payload == before


# -- marker_parse -----------------------------------------------------------------------------


def test_marker_fields_are_parsed():
    body = f"""intro
{START}
Workflow: whitepaper-analysis-v1
  BASE_BRANCH :  develop
head_branch: codex/custom
attachment_url: https://example.org/a.pdf?x=1
no colon here
empty:
: no key
{END}
outside: ignored
"""
    marker = marker_parse(body, start=START, end=END)
    assert marker.fields == {
        "workflow": "whitepaper-analysis-v1",
        "base_branch": "develop",
        "head_branch": "codex/custom",
        "attachment_url": "https://example.org/a.pdf?x=1",
    }
    assert marker.workflow == SUPPORTED_WORKFLOW
    assert marker.base_branch == "develop"
    assert marker.head_branch == "codex/custom"
    assert marker.attachment_url == "https://example.org/a.pdf?x=1"


def test_empty_marker_block_is_accepted():
    marker = marker_parse(f"{START}{END}", start=START, end=END)
    assert marker == Marker(fields={})
    assert (marker.workflow, marker.base_branch, marker.head_branch, marker.attachment_url) == (
        None,
        None,
        None,
        None,
    )


def test_marker_lines_with_windows_line_endings():
    marker = marker_parse(
        f"{START}\r\nworkflow: {SUPPORTED_WORKFLOW}\r\n{END}", start=START, end=END
    )
    assert marker.fields == {"workflow": SUPPORTED_WORKFLOW}


@pytest.mark.parametrize(
    "body",
    ["no marker at all", f"{START}\nworkflow: x\n", f"workflow: x\n{END}", f"{END}\n{START}\n"],
)
def test_missing_marker(body):
    with pytest.raises(IntakeRefused) as info:
        marker_parse(body, start=START, end=END)
    assert info.value.reason == "marker_missing"


def test_unsupported_workflow():
    body = f"{START}\nworkflow: whitepaper-analysis-v2\n{END}"
    with pytest.raises(IntakeRefused) as info:
        marker_parse(body, start=START, end=END)
    assert info.value.reason == "unsupported_workflow_marker"
    assert info.value.detail == "workflow 'whitepaper-analysis-v2' is not 'whitepaper-analysis-v1'"
    assert str(info.value) == f"unsupported_workflow_marker: {info.value.detail}"


def test_custom_marker_strings():
    marker = marker_parse("[[wp]]\nbase_branch: x\n[[/wp]]", start="[[wp]]", end="[[/wp]]")
    assert marker.base_branch == "x"


# -- pdf_url_find / url_normalize ---------------------------------------------------------------


def test_markdown_link_wins_over_an_earlier_plain_url():
    body = "See https://example.org/plain.pdf first.\n[paper](https://example.org/linked.pdf)"
    assert pdf_url_find(body, Marker(fields={})) == "https://example.org/linked.pdf"


def test_first_markdown_pdf_link_is_used():
    body = (
        "[homepage](https://example.org/about)\n"
        "[v1](https://example.org/v1.pdf) and [v2](https://example.org/v2.pdf)"
    )
    assert pdf_url_find(body, Marker(fields={})) == "https://example.org/v1.pdf"


def test_plain_url_with_trailing_punctuation():
    body = "The paper (https://Example.ORG/papers/x.pdf). Also https://example.org/y.pdf,"
    assert pdf_url_find(body, Marker(fields={})) == "https://example.org/papers/x.pdf"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at https://example.org/x.pdf.", "https://example.org/x.pdf"),
        ("at https://example.org/x.pdf,", "https://example.org/x.pdf"),
        ("(https://example.org/x.pdf)", "https://example.org/x.pdf"),
        ("**https://example.org/x.pdf**", "https://example.org/x.pdf"),
        ("<https://example.org/x.pdf>", "https://example.org/x.pdf"),
        (
            "HTTPS://EXAMPLE.org/A/Paper.PDF?Token=AbC#page=3",
            "https://example.org/A/Paper.PDF?Token=AbC",
        ),
    ],
)
def test_plain_url_extraction(text, expected):
    assert pdf_url_find(text, Marker(fields={})) == expected


def test_markdown_image_and_title_forms():
    body = '![scan](<https://example.org/scan.pdf> "the scan")'
    assert pdf_url_find(body, Marker(fields={})) == "https://example.org/scan.pdf"


def test_marker_attachment_url_wins_over_the_body():
    marker = Marker(fields={"attachment_url": "https://Files.Example.org/Paper.pdf#frag"})
    assert pdf_url_find(ISSUE_BODY, marker) == "https://files.example.org/Paper.pdf"


def test_marker_attachment_url_need_not_end_in_pdf():
    marker = Marker(fields={"attachment_url": "https://arxiv.org/pdf/1706.03762"})
    assert pdf_url_find("", marker) == "https://arxiv.org/pdf/1706.03762"


@pytest.mark.parametrize(
    "url", ["ftp://example.org/a.pdf", "file:///tmp/a.pdf", "a.pdf", "https://"]
)
def test_marker_attachment_url_must_be_http(url):
    with pytest.raises(IntakeRefused) as info:
        pdf_url_find(ISSUE_BODY, Marker(fields={"attachment_url": url}))
    assert info.value.reason == "pdf_attachment_missing"
    assert info.value.detail == f"marker attachment_url is not an http(s) URL: {url!r}"


def test_non_http_links_in_the_body_are_skipped():
    body = "[local](file:///tmp/a.pdf) ftp://example.org/b.pdf [ok](http://example.org/c.pdf)"
    assert pdf_url_find(body, Marker(fields={})) == "http://example.org/c.pdf"


@pytest.mark.parametrize(
    "body",
    ["", "no links", "[page](https://example.org/paper.html)", "https://example.org/paper"],
)
def test_no_pdf_url(body):
    with pytest.raises(IntakeRefused) as info:
        pdf_url_find(body, Marker(fields={}))
    assert (info.value.reason, info.value.detail) == (
        "pdf_attachment_missing",
        "no PDF URL in the issue body or the marker",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://GitHub.COM/Owner/Repo/File.PDF", "https://github.com/Owner/Repo/File.PDF"),
        ("https://example.org/a.pdf#page=2", "https://example.org/a.pdf"),
        ("https://example.org/a.pdf?b=2&a=1#x", "https://example.org/a.pdf?b=2&a=1"),
        ("http://User:Pw@Example.org:8080/a.pdf", "http://User:Pw@example.org:8080/a.pdf"),
        ("  https://example.org/a%20b.pdf  ", "https://example.org/a%20b.pdf"),
    ],
)
def test_url_normalize(url, expected):
    assert url_normalize(url) == expected


# -- run id, branches, keyword ------------------------------------------------------------------


def test_run_id_is_deterministic():
    url = "https://github.com/user-attachments/files/123/attention.pdf"
    digest = hashlib.sha256(b"proompteng/lab#42|" + url.encode()).hexdigest()
    run_id = run_id_for("proompteng/lab", 42, url)
    assert run_id == "wp-" + digest[:24]
    assert len(run_id) == 27
    assert run_id_for("proompteng/lab", 42, url) == run_id
    assert run_id_for("proompteng/lab", 43, url) != run_id


def test_run_id_uses_the_normalized_url():
    marker = Marker(fields={})
    a = pdf_url_find("[p](https://EXAMPLE.org/p.pdf#one)", marker)
    b = pdf_url_find("https://example.org/p.pdf#two.", marker)
    assert run_id_for("o/r", 1, a) == run_id_for("o/r", 1, b)


def test_head_branch_and_idempotency_key():
    run_id = "wp-0123456789abcdef01234567"
    assert head_branch_for(run_id, 1) == "codex/whitepaper-89abcdef01234567"
    assert head_branch_for(run_id, 3) == "codex/whitepaper-89abcdef01234567-retry-3"
    assert idempotency_key_for(run_id, 1) == run_id
    assert idempotency_key_for(run_id, 2) == f"{run_id}-retry-2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("please research whitepaper again", True),
        ("Please RESEARCH WhitePaper", True),
        ("research-whitepaper", False),
        ("research", False),
        ("", False),
        (None, False),
    ],
)
def test_requeue_keyword(text, expected):
    assert has_requeue_keyword(text, "research whitepaper") is expected


def test_empty_keyword_never_matches():
    assert has_requeue_keyword("anything", "") is False
    assert has_requeue_keyword("anything", "   ") is False
