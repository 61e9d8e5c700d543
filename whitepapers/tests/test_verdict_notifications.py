"""A whitepaper verdict is posted to the operators' webhooks once per run and verdict value; the
paper's title, text from outside, stays a JSON string."""

from __future__ import annotations

from typing import Any

import pytest

from trading.models import Notification
from whitepapers.models import WhitepaperAnalysisRun
from whitepapers.tests.test_workflow import PAPER, post_event
from whitepapers.tests.workflow import issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]

VERDICT = {"verdict": "implement", "score": 0.81, "confidence": 0.7, "rationale": "OOS."}


def _finalize(client: Any, run_id: str, verdict: dict[str, Any], capture: Any) -> int:
    with capture(execute=True):
        body = {"status": "running", "verdict": verdict}
        response = client.post(f"/whitepapers/runs/{run_id}/finalize", body, format="json")
    return int(response.status_code)


def test_a_verdict_is_posted_once_per_value(
    workflow, control, receiver, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    run_id = str(response.json()["run_id"])
    run = WhitepaperAnalysisRun.objects.select_related("document").get(run_id=run_id)
    run.document.title = "<!channel> momentum & regimes"
    run.document.save(update_fields=["title"])
    agent = workflow.agent(run_id)
    capture = django_capture_on_commit_callbacks
    assert [_finalize(agent, run_id, VERDICT, capture) for _ in range(2)] == [200, 200]
    assert _finalize(agent, run_id, {**VERDICT, "verdict": "reject"}, capture) == 200
    rows = list(Notification.objects.order_by("pk").values_list("event_id", "status"))
    assert rows == [
        (f"whitepaper_verdict:{run_id}:implement", "sent"),
        (f"whitepaper_verdict:{run_id}:reject", "sent"),
    ]
    posted = [r.json()["payload"] for r in receiver.posted("/hook")]
    assert [(p["verdict"], p["title"]) for p in posted] == [
        ("implement", "<!channel> momentum & regimes"),
        ("reject", "<!channel> momentum & regimes"),
    ]
    assert [r.json()["text"].count("&lt;!channel&gt;") for r in receiver.posted("/slack")] == [1, 1]
