"""A deeply nested JSON body is a 400 in the project's error format, not an HTML 500.

Before, 100,000 nested `[` made the JSON parser raise RecursionError, which DRF does not handle:
Django answered its HTML 500 page (and logged a server error) for one small anonymous request.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from trading.models import SafetyEvent, SafetyState
from whitepapers.models import GithubIssueEvent

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def operator(operator_token, relaxed_throttles) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token.key}")
    return client


def too_deep(response, depth: int) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "json_too_deep",
            "message": f"JSON nested deeper than {depth} levels is not accepted",
            "details": None,
        },
        "request_id": response["X-Request-ID"],
    }


def nested(lists: int) -> str:
    """A string inside `lists` nested lists: `lists` levels deep."""
    return "[" * lists + '"x"' + "]" * lists


def test_a_hundred_thousand_brackets_are_a_400_and_change_nothing(operator):
    response = operator.post("/trading/kill-switch", data=DEEP, content_type="application/json")
    too_deep(response, 64)
    assert (SafetyState.objects.count(), SafetyEvent.objects.count()) == (0, 0)


def test_api_max_json_depth_is_the_limit(operator, settings):
    settings.API_MAX_JSON_DEPTH = 4
    # {"engaged": …, "reason": [[["x"]]]} is four levels deep: parsed, then refused by validation
    at_limit = '{"engaged": true, "reason": ' + nested(3) + "}"
    response = operator.post("/trading/kill-switch", data=at_limit, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
    over = '{"engaged": true, "reason": ' + nested(4) + "}"
    too_deep(operator.post("/trading/kill-switch", data=over, content_type="application/json"), 4)
    settings.API_MAX_JSON_DEPTH = 64
    # parsed (the body reaches validation, which refuses the unknown key), not too deep
    deep_but_allowed = '{"engaged": true, "reason": "r", "x": ' + nested(63) + "}"
    parsed = operator.post(
        "/trading/kill-switch", data=deep_but_allowed, content_type="application/json"
    )
    assert (parsed.status_code, parsed.json()["error"]["details"]) == (
        400,
        {"x": ["unknown field"]},
    )
    over = '{"engaged": true, "reason": "r", "x": ' + nested(64) + "}"
    too_deep(operator.post("/trading/kill-switch", data=over, content_type="application/json"), 64)
    assert SafetyEvent.objects.count() == 0


def test_a_view_reading_the_body_itself_gets_the_same_400(settings):
    """The GitHub webhook parses its (signed) body with json.loads, not DRF's parser: the
    exception handler answers the RecursionError."""
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = "webhook-secret"
    cache.clear()
    signature = "sha256=" + hmac.new(b"webhook-secret", DEEP, hashlib.sha256).hexdigest()
    response = APIClient().post(
        "/whitepapers/webhooks/github",
        data=DEEP,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="issues",
        HTTP_X_GITHUB_DELIVERY="deep-1",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )
    too_deep(response, 64)
    assert GithubIssueEvent.objects.count() == 0


def test_the_webhook_refuses_a_body_deeper_than_the_limit_that_json_could_parse(settings):
    """100 levels parse without a RecursionError: the webhook's own bounded loader refuses them
    before the payload is stored and walked."""
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = "webhook-secret"
    cache.clear()
    body = ('{"action": "opened", "issue": ' + nested(100) + "}").encode()
    signature = "sha256=" + hmac.new(b"webhook-secret", body, hashlib.sha256).hexdigest()
    response = APIClient().post(
        "/whitepapers/webhooks/github",
        data=body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="issues",
        HTTP_X_GITHUB_DELIVERY="deep-2",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )
    too_deep(response, 64)
    assert GithubIssueEvent.objects.count() == 0


def test_json_loads_bounded_for_bodies_read_outside_drf(settings):
    from torghut_site.drf import JsonTooDeepError, json_loads_bounded

    settings.API_MAX_JSON_DEPTH = 3
    assert json_loads_bounded(nested(3)) == [[["x"]]]
    for body in (nested(4), DEEP):
        with pytest.raises(JsonTooDeepError, match="deeper than 3 levels"):
            json_loads_bounded(body)
    with pytest.raises(ValueError, match="deeper than 10 levels"):
        json_loads_bounded(nested(11), max_depth=10)
