"""Schemathesis against the served OpenAPI schema (`/api/schema/`), in process over WSGI.

Every operation is fuzzed with positive data (valid per the schema) and, where it takes any
input, negative data (invalid per the schema), once without credentials and once as a superuser
with an API token. Every answer must be documented (status code, content type, body schema),
invalid input must be rejected, and nothing may answer 500. The run is bounded and derandomized
(the same examples every run), so it is a regression test, not a search that flakes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from trading.models import Execution, ExecutionTcaMetric, LiveApproval, Strategy, TradeDecision
from whitepapers.models import DocumentSource, WhitepaperAnalysisRun, WhitepaperDocument

# Checked: no 500, every status code, content type, body and header documented, and (as the
# operator) that a request without the credentials is refused. Not checked: whether the schema
# describes input validation exactly. DRF refuses what JSON Schema cannot say (NUL characters,
# which Postgres cannot store; the decimal places of a Decimal) and by design coerces what it
# calls invalid (a number into a CharField, "true" into a BooleanField). Those reports say nothing
# about safety, and they would move with every schema change.
INPUT_STRICTNESS_CHECKS = [positive_data_acceptance, negative_data_rejection]
SEEDED_RUN_ID = "wp-5ec0000000000000000000aa"
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}


def _served_operations() -> list[tuple[str, str, bool]]:
    """(method, path, takes input) of every operation the schema generator publishes. Input is
    a body or a query parameter: a free-form path string has no invalid value to generate."""
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (
            method.upper(),
            path,
            "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])),
        )
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


OPERATIONS = _served_operations()
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path, takes_input in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if takes_input or mode is GenerationMode.POSITIVE
]


@pytest.fixture
def api_schema(live_server, settings, relaxed_throttles) -> Any:
    """The schema as the live server serves it (`GET /api/schema/`), bound to that server: a real
    HTTP server thread on 127.0.0.1 (pytest-django's `live_server`) over the test database, whose
    rows the test commits (a transactional test), so every request crosses a real socket."""
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False
    # dispatches go to a closed local port: no request ever leaves the machine
    settings.WHITEPAPER_AGENTRUN_SUBMIT_URL = "http://127.0.0.1:9/v1/agent-runs"
    settings.WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = 1
    settings.WHITEPAPER_AGENTRUN_BACKOFF_SECONDS = 0.0
    # the live lane of the live-approval request's documented example, so that it is answered 201
    settings.TRADING_LANES = [
        *settings.TRADING_LANES,
        {**settings.TRADING_LANES[0], "label": "live-1", "mode": "live"},
    ]
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", timeout=30)
    schema.config.update(base_url=live_server.url)
    return schema


@pytest.fixture
def seeded(transactional_db) -> None:
    """A decision with its execution and TCA row, a whitepaper run and a live-approval request,
    so the read endpoints serialize real rows and the run endpoints find a run."""
    strategy = Strategy.objects.create(name="sec-fuzz", strategy_type="legacy_macd_rsi")
    decision = TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol="AAPL",
        timeframe="1Min",
        event_ts=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
        action="buy",
        qty=Decimal("2"),
        decision_hash="5ec" + "0" * 61,
        client_order_id="tg-5ec" + "0" * 42,
        status="filled",
    )
    execution = Execution.objects.create(
        decision=decision,
        account_label="paper",
        broker="simulated",
        broker_order_id="sim-1",
        client_order_id=decision.client_order_id,
        symbol="AAPL",
        side="buy",
        order_type="limit",
        time_in_force="day",
        submitted_qty=Decimal("2"),
        filled_qty=Decimal("2"),
        avg_fill_price=Decimal("190.5"),
        status="filled",
        submitted_at=datetime(2026, 3, 3, 15, 0, 1, tzinfo=UTC),
    )
    ExecutionTcaMetric.objects.create(
        execution=execution,
        decision=decision,
        strategy=strategy,
        account_label="paper",
        symbol="AAPL",
        side="buy",
        arrival_price=Decimal("190.4"),
        avg_fill_price=Decimal("190.5"),
        filled_qty=Decimal("2"),
        slippage_bps=Decimal("5.25"),
        computed_at=datetime(2026, 3, 3, 15, 0, 2, tzinfo=UTC),
    )
    document = WhitepaperDocument.objects.create(
        document_key="5ec" + "0" * 37,
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier="proompteng/lab#1",
    )
    WhitepaperAnalysisRun.objects.create(run_id=SEEDED_RUN_ID, document=document)
    requester = get_user_model().objects.create_user("sec-requester", is_staff=True)
    LiveApproval.objects.create(
        account_label="live-1", reason="seeded", requested_by=requester, ttl=timedelta(hours=1)
    )


def _fuzz(
    api_schema: Any,
    method: str,
    path: str,
    mode: GenerationMode,
    headers: dict[str, str],
    *,
    every_check: bool = False,
) -> None:
    operation = api_schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)
    seeded_ids = {"{run_id}": {"run_id": SEEDED_RUN_ID}, "{id}": {"id": _seeded_row_id(path)}}
    for placeholder, parameters in seeded_ids.items():
        if placeholder in path:
            # half the examples address the seeded row, so its answers are checked too
            strategy = st.one_of(
                strategy,
                operation.as_strategy(generation_mode=mode, path_parameters=parameters),
            )
    documented = set(operation.definition.raw.get("responses", {}))
    # a documented 5xx is an answer (503 degraded, 502 upstream failed); 500 never is
    excluded: list[Any] = []
    additional = list(INPUT_STRICTNESS_CHECKS)  # on, whatever the config
    if any(code.startswith("5") for code in documented):
        excluded.append(not_a_server_error)

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(
            headers=headers, excluded_checks=excluded, additional_checks=additional
        )
        assert response.status_code != 500

    run()


def _seeded_row_id(path: str) -> str:
    """The id of the seeded row a `{id}` path addresses (the latest decision or execution)."""
    model = Execution if path.startswith("/trading/executions/") else TradeDecision
    row = model.objects.order_by("-id").first()
    return str(row.id if row is not None else 1)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_fuzz_unauthenticated(api_schema, seeded, method, path, mode):
    _fuzz(api_schema, method, path, mode, headers={})


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_fuzz_as_operator(api_schema, seeded, operator_token, settings, method, path, mode):
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = "sec-fuzz-webhook-secret"  # noqa: S105
    _fuzz(api_schema, method, path, mode, headers={"Authorization": f"Token {operator_token.key}"})


def test_every_api_route_is_in_the_schema():
    """A DRF route missing from the schema would escape the fuzzing above."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework.views import APIView

    def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), entry.callback

    api_routes = {
        route
        for route, callback in walk(get_resolver().url_patterns)
        if isinstance(getattr(callback, "view_class", None), type)
        and issubclass(callback.view_class, APIView)
        and not route.startswith("api/")
    }

    def normalized(route: str) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.lstrip("/"))

    published = {normalized(path) for _, path, _ in OPERATIONS}
    assert {normalized(route) for route in api_routes} - published == set()


# The trading lists and details state their input exactly: every check runs, the input
# strictness checks included (valid input answered 2xx, invalid input refused with a 4xx).
EXACT_PATHS = (
    "/trading/decisions",
    "/trading/decisions/{id}",
    "/trading/executions",
    "/trading/executions/{id}",
)
EXACT_CASES = [
    pytest.param("GET", path, mode, id=f"GET {path} {mode.value}")
    for path in EXACT_PATHS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
]


@pytest.mark.parametrize(("method", "path", "mode"), EXACT_CASES)
def test_fuzz_with_every_check(api_schema, seeded, operator_token, method, path, mode):
    headers = {"Authorization": f"Token {operator_token.key}"}
    _fuzz(api_schema, method, path, mode, headers=headers, every_check=True)


def test_finalize_json_values_are_not_nullable_in_the_schema():
    """DRF's JSONField refuses null (400); an empty schema would promise it is accepted."""
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    fields = {
        "SynthesisRequest": ("risk_assessment", "implementation_implications"),
        "VerdictRequest": ("dspy_eval_report",),
        "StepRequest": ("input_json", "output_json", "error_json"),
    }
    for component, names in fields.items():
        for name in names:
            schema = components[component]["properties"][name]
            assert "nullable" not in schema, (component, name)
            assert [option["type"] for option in schema["anyOf"]] == [
                "object", "array", "string", "number", "boolean"
            ]  # fmt: skip
