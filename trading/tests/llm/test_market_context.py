"""The Jangar market context in the review task, against the market-context stand-in
(tests/servers/market_context_server.py) and the OpenAI-compatible test server: a good context
reaches the model's messages and the review row; a missing, stale, low-quality or failed one
blocks the call (required or fail_closed) or is recorded as shadow (shadow_only); hostile bodies
are errors, never crashes."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from tests.conftest import manage, paper_lane
from tests.servers.base import Fault, Response
from tests.servers.market_context_server import PATH, MarketContextServer, bundle
from trading.market_context import market_context_fetch
from trading.models import LLMDecisionReview, Strategy, TradeDecision
from trading.services.review_context import review_snapshot
from trading.services.review_replay import review_ask_again
from trading.services.reviews import review_run
from trading.tests.llm.answers import legacy_json

pytestmark = pytest.mark.django_db

UNUSABLE = ("stale", "low_quality", "error", "timeout", "missing")


@pytest.fixture(scope="session")
def mc_server_session() -> Iterator[MarketContextServer]:
    server = MarketContextServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mc_server(mc_server_session: MarketContextServer) -> Iterator[MarketContextServer]:
    mc_server_session.reset()
    yield mc_server_session
    mc_server_session.reset()


@pytest.fixture
def mc_settings(llm_settings, mc_server):
    llm_settings.TRADING_LANES = [paper_lane()]
    llm_settings.TRADING_MARKET_CONTEXT_URL = mc_server.context_url
    llm_settings.TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS = 0.5
    llm_settings.TRADING_MARKET_CONTEXT_REQUIRED = False
    llm_settings.TRADING_MARKET_CONTEXT_FAIL_MODE = "shadow_only"
    llm_settings.TRADING_MARKET_CONTEXT_MIN_QUALITY = 0.4
    llm_settings.TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS = 300
    llm_settings.JANGAR_API_KEY = ""
    return llm_settings


def _review(symbol: str = "AAPL") -> LLMDecisionReview:
    strategy, _ = Strategy.objects.get_or_create(
        name="mc", defaults={"strategy_type": "legacy_macd_rsi"}
    )
    n = TradeDecision.objects.count()
    decision = TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol=symbol,
        timeframe="1Min",
        event_ts=timezone.now(),
        action="buy",
        qty=Decimal(10),
        price=Decimal(100),
        decision_hash=f"{n:064x}",
        client_order_id=f"tg-{n:045x}",
        status="pending_review",
    )
    return LLMDecisionReview.objects.create(
        decision=decision,
        account_label="paper",
        deadline=timezone.now() + timedelta(seconds=30),
        input_json={"decision": {"symbol": symbol, "qty": "10"}},
        deterministic_qty=Decimal(10),
    )


def _user_message(body: dict[str, Any]) -> dict[str, Any]:
    content = body["messages"][-1]["content"]
    parsed: dict[str, Any] = json.loads(content[content.index("\n") + 1 :])
    return parsed


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"torghut_trading_llm_market_context_{name}", labels) or 0.0


def _answer(server: MarketContextServer, case: str) -> None:
    now = timezone.now()
    if case == "stale":
        server.answers["AAPL"] = bundle("AAPL", as_of=now - timedelta(seconds=900), freshness=900)
    elif case == "low_quality":
        server.answers["AAPL"] = bundle("AAPL", as_of=now, quality=0.1)
    elif case == "error":
        server.answers["AAPL"] = Response(status=503, body={"ok": False, "message": "down"})
    elif case == "timeout":
        server.answers["AAPL"] = bundle("AAPL", as_of=now)
        server.inject(Fault("GET", PATH, delay=1.5))
    # "missing": no answer for the symbol ({"ok": true, "context": null})


REASON = {
    "stale": "market_context_stale",
    "low_quality": "market_context_low_quality",
    "error": "market_context_error",
    "timeout": "market_context_error",
    "missing": "market_context_missing",
}


def test_a_good_context_reaches_the_model_and_the_row_and_replays(
    mc_settings, mc_server, llm_server
):
    mc_settings.JANGAR_API_KEY = "jangar-key"
    mc_server.answers["AAPL"] = bundle(
        "AAPL", as_of=timezone.now() - timedelta(seconds=20), risk_flags=("earnings_soon",)
    )
    review = _review()
    llm_server.queue(legacy_json("approve"), legacy_json("approve"))
    assert review_run(review_id=review.pk).effect == "pass"

    (arrived,) = mc_server.requests
    assert (arrived.query, arrived.headers["authorization"]) == (
        {"symbol": "AAPL"},
        "Bearer jangar-key",
    )
    sent = _user_message(llm_server.completions()[0])
    context = sent["market_context"]
    assert (context["symbol"], context["quality_score"], context["risk_flags"]) == (
        "AAPL",
        0.8,
        ["earnings_soon"],
    )
    assert context["domains"]["news"]["payload"] == {"headline": "quiet tape"}
    assert context["domains"]["regime"]["citations"][0]["source"] == "regime-feed"
    assert sent["decision"] == {"symbol": "AAPL", "qty": "10"}
    review.refresh_from_db()
    assert review.market_context is not None
    assert (review.market_context["status"], review.market_context_reasons) == ("ok", [])
    assert review.market_context["context"] == context
    assert review_snapshot(review) == sent
    replay = review_ask_again(review_id=review.pk)
    assert replay.error == ""
    assert llm_server.completions()[1]["messages"] == llm_server.completions()[0]["messages"]


@pytest.mark.parametrize("case", UNUSABLE)
def test_shadow_only_goes_on_without_an_unusable_context_and_records_why(
    case, mc_settings, mc_server, llm_server
):
    mc_settings.TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS = 0.3
    _answer(mc_server, case)
    shadow_before = _metric("shadow_total")
    reason_before = _metric("reason_total", reason=REASON[case])
    review = _review()
    llm_server.queue(legacy_json("approve"))
    assert review_run(review_id=review.pk).effect == "pass"

    (completion,) = llm_server.completions()
    assert "market_context" not in _user_message(completion)
    review.refresh_from_db()
    assert (review.verdict, review.market_context_reasons) == ("approve", [REASON[case]])
    assert review.market_context is not None
    assert review.market_context["status"] == REASON[case]
    rated = review.market_context["context"] is not None  # fetched and typed, then rated
    assert rated == (case in ("stale", "low_quality"))
    assert _metric("shadow_total") == shadow_before + 1
    assert _metric("reason_total", reason=REASON[case]) == reason_before + 1


@pytest.mark.parametrize("case", UNUSABLE)
def test_fail_closed_makes_no_call_and_vetoes(case, mc_settings, mc_server, llm_server):
    mc_settings.TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS = 0.3
    mc_settings.TRADING_MARKET_CONTEXT_FAIL_MODE = "fail_closed"
    _answer(mc_server, case)
    block_before = _metric("block_total")
    review = _review()
    llm_server.queue(legacy_json("approve"))
    assert review_run(review_id=review.pk).effect == "veto"

    assert llm_server.completions() == []
    review.refresh_from_db()
    assert (review.verdict, review.reasons, review.final_qty) == (
        "error",
        [REASON[case]],
        Decimal(0),
    )
    assert review.error.startswith(f"{REASON[case]}: ")
    assert (review.tokens_prompt, review.prompt_json) == (0, [])
    assert review.market_context_reasons == [REASON[case]]
    assert _metric("block_total") == block_before + 1


def test_fail_closed_under_pass_through_keeps_the_deterministic_order_never_larger(
    mc_settings, mc_server, llm_server
):
    mc_settings.TRADING_MARKET_CONTEXT_FAIL_MODE = "fail_closed"
    mc_settings.LLM_FAIL_MODE = "pass_through"
    mc_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    _answer(mc_server, "low_quality")
    review = _review()
    assert review_run(review_id=review.pk).effect == "pass"
    review.refresh_from_db()
    assert (review.verdict, review.final_qty, review.reasons) == (
        "error",
        Decimal(10),
        ["market_context_low_quality_pass_through"],
    )
    assert llm_server.completions() == []


def test_required_blocks_even_under_shadow_only(mc_settings, mc_server, llm_server):
    mc_settings.TRADING_MARKET_CONTEXT_REQUIRED = True
    _answer(mc_server, "stale")
    review = _review()
    assert review_run(review_id=review.pk).effect == "veto"
    review.refresh_from_db()
    assert (review.verdict, review.reasons) == ("error", ["market_context_stale"])
    assert llm_server.completions() == []


def test_required_without_a_url_blocks_every_review_and_fetches_nothing(
    mc_settings, mc_server, llm_server
):
    mc_settings.TRADING_MARKET_CONTEXT_URL = ""
    mc_settings.TRADING_MARKET_CONTEXT_REQUIRED = True
    review = _review()
    assert review_run(review_id=review.pk).effect == "veto"
    review.refresh_from_db()
    assert (review.reasons, review.error) == (
        ["market_context_missing"],
        "market_context_missing: TRADING_MARKET_CONTEXT_URL is not set",
    )
    assert (mc_server.requests, llm_server.completions()) == ([], [])


def test_no_url_fetches_nothing_and_changes_nothing(mc_settings, mc_server, llm_server):
    mc_settings.TRADING_MARKET_CONTEXT_URL = ""
    mc_settings.TRADING_MARKET_CONTEXT_FAIL_MODE = "fail_closed"
    review = _review()
    llm_server.queue(legacy_json("approve"))
    assert review_run(review_id=review.pk).effect == "pass"
    assert mc_server.requests == []
    assert _user_message(llm_server.completions()[0]) == {
        "decision": {"symbol": "AAPL", "qty": "10"}
    }
    review.refresh_from_db()
    assert (review.market_context, review.market_context_reasons) == (None, [])


def test_a_guardrail_block_fetches_no_context(mc_settings, mc_server, llm_server):
    mc_settings.LLM_ALLOWED_MODELS = ["another-model"]
    review = _review()
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.reasons) == ("error", ["llm_guardrail_block"])
    assert (mc_server.requests, llm_server.completions()) == ([], [])


def _hostile(server: MarketContextServer, case: str, other: MarketContextServer) -> None:
    good = bundle("AAPL", as_of=timezone.now())
    answers: dict[str, Any] = {
        "huge": Response(
            raw=json.dumps({"ok": True, "context": good, "pad": "x" * 400_000}).encode()
        ),
        "nested": Response(
            raw=b'{"ok": true, "context": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
        ),
        "not_json": Response(raw=b"<html>gateway</html>"),
        "not_ok": Response(body={"ok": False, "message": "no bundle"}),
        "bad_types": {**good, "qualityScore": "high"},
        "bad_domain": {**good, "domains": {"news": {"state": "weird"}}},
        "redirect": Response(status=302, headers={"Location": other.context_url + "?symbol=AAPL"}),
        "list": Response(raw=b"[1, 2, 3]"),
    }
    server.answers["AAPL"] = answers[case]


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("huge", "body larger than 262144 bytes"),
        ("nested", "body is not JSON (RecursionError)"),
        ("not_json", "body is not JSON (JSONDecodeError)"),
        ("not_ok", "ok is not true: no bundle"),
        ("bad_types", "qualityScore is not a number"),
        ("bad_domain", "domains.news.state is not one of ok, stale, missing, error"),
        ("redirect", "http_302"),
        ("list", "body is not a JSON object"),
    ],
)
def test_hostile_bodies_are_errors_never_crashes(case, detail, mc_settings, mc_server):
    other = MarketContextServer()
    other.start()
    try:
        _hostile(mc_server, case, other)
        context = market_context_fetch(symbol="AAPL", now=timezone.now())
        assert (context.reason, context.detail) == ("market_context_error", detail)
        assert other.requests == []  # a redirect is never followed
    finally:
        other.stop()


def _drip_server() -> tuple[socket.socket, threading.Thread]:
    """Answers 200 with a 100,000-byte body, one byte every 50 ms."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{")
            with contextlib.suppress(OSError):
                for _ in range(100):
                    time.sleep(0.05)
                    conn.sendall(b" ")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_slow_drip_ends_at_the_deadline(mc_settings):
    listener, thread = _drip_server()
    port = listener.getsockname()[1]
    mc_settings.TRADING_MARKET_CONTEXT_URL = f"http://127.0.0.1:{port}/api/torghut/market-context"
    mc_settings.TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS = 0.3
    started = time.monotonic()
    context = market_context_fetch(symbol="AAPL", now=timezone.now())
    elapsed = time.monotonic() - started
    listener.close()
    thread.join(timeout=10)
    assert (context.reason, context.detail) == (
        "market_context_error",
        "timeout: body not read within the deadline",
    )
    assert elapsed < 0.6  # the drip would take 5 s


def test_a_hostile_body_through_the_task_blocks_without_a_crash(mc_settings, mc_server, llm_server):
    mc_settings.TRADING_MARKET_CONTEXT_FAIL_MODE = "fail_closed"
    mc_server.answers["AAPL"] = Response(raw=b"\xff\xfe not json")
    review = _review()
    assert review_run(review_id=review.pk).result == "completed"
    review.refresh_from_db()
    assert (review.status, review.verdict, review.reasons) == (
        "completed",
        "error",
        ["market_context_error"],
    )


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("TRADING_MARKET_CONTEXT_MIN_QUALITY", 0.85, "market_context_low_quality"),
        ("TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS", 10, "market_context_stale"),
    ],
)
def test_the_limits_decide_what_is_usable(setting, value, reason, mc_settings, mc_server):
    mc_server.answers["AAPL"] = bundle("AAPL", as_of=timezone.now(), quality=0.8, freshness=30)
    assert market_context_fetch(symbol="AAPL", now=timezone.now()).reason == ""
    setattr(mc_settings, setting, value)
    assert market_context_fetch(symbol="AAPL", now=timezone.now()).reason == reason


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        (
            {"TRADING_MARKET_CONTEXT_REQUIRED": "true"},
            ["TRADING_MARKET_CONTEXT_REQUIRED=true requires TRADING_MARKET_CONTEXT_URL"],
        ),
        (
            {
                "TRADING_MARKET_CONTEXT_URL": "ftp://jangar/x",
                "TRADING_MARKET_CONTEXT_FAIL_MODE": "open",
                "TRADING_MARKET_CONTEXT_MIN_QUALITY": "2",
                "TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS": "0",
                "TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS": "soon",
            },
            [
                "TRADING_MARKET_CONTEXT_URL='ftp://jangar/x' is not an http(s) URL with a host "
                "(no user-info, no fragment)",
                "TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS=0.0 must be >= 0.1",
                "TRADING_MARKET_CONTEXT_FAIL_MODE='open' must be one of: shadow_only, fail_closed",
                "TRADING_MARKET_CONTEXT_MIN_QUALITY=2.0 must be <= 1.0",
                "TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS='soon' is not an integer",
            ],
        ),
    ],
)
def test_market_context_settings_are_validated_at_startup(env, problems):
    result = manage("check", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [f"  - {p}" for p in problems]
