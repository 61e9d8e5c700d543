"""A whitepaper run names the research candidates it inspired: through finalize (the agent or an
operator), once per candidate; the field is untrusted input, refused whole when it is not a
bounded list of candidate ids, with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from whitepapers.models import WhitepaperAnalysisRun, WhitepaperRunCandidateLink
from whitepapers.services.links import CandidateLinkError, run_candidates_link
from whitepapers.tests.test_workflow import PAPER, _operator, post_event
from whitepapers.tests.workflow import issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]

A, B, C = "cand-0123456789ab", "cand-ba9876543210", "cand-00000000ffff"


@pytest.fixture
def run_id(workflow, control, django_capture_on_commit_callbacks) -> str:
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    return str(response.json()["run_id"])


def _links(run_id: str) -> list[tuple[str, str, str]]:
    return list(
        WhitepaperRunCandidateLink.objects.filter(run__run_id=run_id)
        .order_by("pk")
        .values_list("candidate_id", "source", "linked_by")
    )


def _finalize(client: Any, run_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/whitepapers/runs/{run_id}/finalize", body, format="json")


def test_finalize_links_candidates_once(workflow, run_id):
    agent = workflow.agent(run_id)
    first = _finalize(agent, run_id, {"status": "running", "candidate_ids": [A, B, A]})
    assert first.status_code == 200
    assert _links(run_id) == [
        (A, "finalize", f"agentrun:{run_id}#1"),
        (B, "finalize", f"agentrun:{run_id}#1"),
    ]
    # a repeated finalize adds only what is new; the first row of a candidate stays as it was
    operator = APIClient()
    operator.force_authenticate(_operator())
    again = _finalize(operator, run_id, {"status": "completed", "candidate_ids": [B, C]})
    assert again.status_code == 200
    assert _links(run_id) == [
        (A, "finalize", f"agentrun:{run_id}#1"),
        (B, "finalize", f"agentrun:{run_id}#1"),
        (C, "finalize", "op-change_whitepaperanalysisrun"),
    ]
    # a finalize without the field leaves the links alone
    assert _finalize(agent, run_id, {"status": "completed"}).status_code == 200
    assert len(_links(run_id)) == 3


@pytest.mark.parametrize(
    "value",
    [
        [f"cand-{i:012x}" for i in range(51)],  # over the limit of 50
        ["cand-0123456789AB"],  # upper-case hex
        ["cand-0123456789a"],  # too short
        [A + "0"],  # too long
        ["cand-0123456789ab\n"],  # a trailing newline
        [" cand-0123456789ab"],
        ["../../etc/passwd"],
        [123456789012],  # not a string
        [None],
        [{"candidate_id": A}],
        [[A]],
        [True],
        A,  # not a list
        {"0": A},
        "",
    ],
)
def test_finalize_refuses_bad_candidate_ids_and_writes_nothing(workflow, run_id, value):
    body = {
        "status": "completed",
        "synthesis": {"executive_summary": "x"},
        "candidate_ids": value if isinstance(value, list) else value,
    }
    if isinstance(value, list) and value and value[0] != A:
        body["candidate_ids"] = [A, *value]  # a valid id beside it is not written either
    response = _finalize(workflow.agent(run_id), run_id, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "candidate_ids" in str(error)
    assert _links(run_id) == []
    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    assert run.status == "agentrun_dispatched"
    assert not hasattr(run, "synthesis")


def test_exactly_fifty_ids_are_accepted(workflow, run_id):
    ids = [f"cand-{i:012x}" for i in range(50)]
    response = _finalize(workflow.agent(run_id), run_id, {"candidate_ids": ids})
    assert response.status_code == 200
    assert [cid for cid, _, _ in _links(run_id)] == ids


def test_the_link_service_and_the_database_refuse_what_the_api_refuses(run_id):
    for bad, code in (
        (["CAND-0123456789ab"], "invalid_candidate_id"),
        ([7], "invalid_candidate_id"),
        ([A + "\n"], "invalid_candidate_id"),
        ([f"cand-{i:012x}" for i in range(51)], "too_many_candidates"),
    ):
        with pytest.raises(CandidateLinkError) as exc:
            run_candidates_link(run_id=run_id, candidate_ids=bad, source="admin", linked_by="ops")
        assert exc.value.code == code
    with pytest.raises(CandidateLinkError) as exc:
        run_candidates_link(run_id=run_id, candidate_ids=[A], source="admin", linked_by=" ")
    assert exc.value.code == "linked_by_required"
    assert _links(run_id) == []
    run = WhitepaperAnalysisRun.objects.get(run_id=run_id)
    for fields in (
        {"candidate_id": "cand-xyz", "source": "admin", "linked_by": "ops"},
        {"candidate_id": A, "source": "email", "linked_by": "ops"},
        {"candidate_id": A, "source": "admin", "linked_by": ""},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            WhitepaperRunCandidateLink.objects.create(run=run, **fields)
    assert run_candidates_link(
        run_id=run_id, candidate_ids=[A], source="admin", linked_by="ops"
    ) == [A]
    with pytest.raises(IntegrityError), transaction.atomic():
        WhitepaperRunCandidateLink.objects.create(
            run=run, candidate_id=A, source="finalize", linked_by="agent"
        )
    assert _links(run_id) == [(A, "admin", "ops")]
