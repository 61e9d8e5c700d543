"""Flipt client settings: each one, set to two values, changes the evaluation request torghut
sends (a stand-in server records it) and so the flag value it gets back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.base import Request, Response, TestHTTPServer
from torghut_site.flags import flag_enabled, resolver


class FliptStub(TestHTTPServer):
    """Answers `enabled: true` only for namespace `ops` and entity `desk-7`."""

    def __init__(self) -> None:
        super().__init__()
        self.route("POST", "/evaluate/v1/boolean", self._evaluate)

    def _evaluate(self, request: Request) -> Response:
        body = request.json()
        enabled = body["namespaceKey"] == "ops" and body["entityId"] == "desk-7"
        return Response(200, {"enabled": enabled, "flagKey": body["flagKey"]})

    def evaluations(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def stub(settings) -> Iterator[FliptStub]:
    server = FliptStub()
    server.start()
    settings.TRADING_FEATURE_FLAGS_ENABLED = True
    settings.TRADING_FEATURE_FLAGS_URL = server.url
    settings.TRADING_FEATURE_FLAGS_CACHE_SECONDS = 0.0
    settings.TRADING_FEATURE_FLAGS_TOKEN = ""
    settings.TRADING_ALLOW_SHORTS = False
    resolver.reset()
    yield server
    resolver.reset()
    server.stop()


@pytest.mark.parametrize(
    ("namespace", "entity", "value"),
    [("default", "desk-7", False), ("ops", "torghut", False), ("ops", "desk-7", True)],
)
def test_namespace_and_entity_id_are_what_flipt_evaluates(settings, stub, namespace, entity, value):
    settings.TRADING_FEATURE_FLAGS_NAMESPACE = namespace
    settings.TRADING_FEATURE_FLAGS_ENTITY_ID = entity
    assert flag_enabled("TRADING_ALLOW_SHORTS") is value
    (request,) = stub.evaluations()
    body = request.json()
    assert (body["namespaceKey"], body["entityId"], body["flagKey"]) == (
        namespace,
        entity,
        "torghut_trading_allow_shorts",
    )


def test_token_is_sent_as_a_bearer_header(settings, stub):
    flag_enabled("TRADING_ALLOW_SHORTS")
    settings.TRADING_FEATURE_FLAGS_TOKEN = "flipt-token-1"
    flag_enabled("TRADING_ALLOW_SHORTS")
    headers = [r.headers.get("authorization") for r in stub.evaluations()]
    assert headers == [None, "Bearer flipt-token-1"]
