from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from trading.models import SafetyEvent, SafetyState, Strategy, TradeDecision
from trading.services.safety import kill_switch_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    user = get_user_model().objects.create_user("reader", password="x")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def operator():
    user = get_user_model().objects.create_user("operator", password="x")
    user.user_permissions.add(Permission.objects.get(codename="change_safetystate"))
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user.pk))
    return client


def make_decision(symbol: str, n: int, status: str = "rejected") -> TradeDecision:
    strategy, _ = Strategy.objects.get_or_create(
        name="s", defaults={"strategy_type": "legacy_macd_rsi"}
    )
    return TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol=symbol,
        timeframe="1Min",
        event_ts=datetime(2026, 3, 3, 15, n, tzinfo=UTC),
        action="buy",
        qty=Decimal(n + 1),
        decision_hash=f"{n:064x}",
        client_order_id=f"tg-{n:045x}",
        status=status,
        reject_reason="shorts_not_allowed" if status == "rejected" else "",
    )


def test_trading_endpoints_require_authentication():
    client = APIClient()
    for path in (
        "/trading/status",
        "/trading/decisions",
        "/trading/executions",
        "/trading/tca",
        "/trading/metrics",
    ):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"


def test_decisions_filter_by_symbol_and_page(reader):
    for n in range(3):
        make_decision("AAPL", n)
    make_decision("MSFT", 9)
    body = reader.get("/trading/decisions", {"symbol": "aapl", "limit": 2}).json()
    assert [row["qty"] for row in body["results"]] == ["3.00000000", "2.00000000"]
    assert body["results"][0]["reject_reason"] == "shorts_not_allowed"
    last_id = body["results"][-1]["id"]
    assert (
        body["next"]
        == f"http://testserver/trading/decisions?symbol=aapl&limit=2&after_id={last_id}"
    )


def test_decisions_reject_bad_filters(reader):
    response = reader.get("/trading/decisions", {"since": "yesterday"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "since" in response.json()["error"]["details"]


def test_status_shows_kill_switch_and_lanes(reader, settings):
    settings.TRADING_KILL_SWITCH_ENABLED = False
    body = reader.get("/trading/status").json()
    assert body["kill_switch"] == {"active": False, "source": "", "reason": ""}
    assert body["mode"] == "paper"
    assert [lane["label"] for lane in body["lanes"]] == ["paper"]
    SafetyState.objects.create(scope="global", kill_switch_engaged=True, kill_switch_reason="drill")
    assert reader.get("/trading/status").json()["kill_switch"] == {
        "active": True,
        "source": "manual",
        "reason": "drill",
    }


def test_kill_switch_api_needs_the_permission_and_a_reason(reader, operator):
    denied = reader.post("/trading/kill-switch", {"engaged": True, "reason": "x"}, format="json")
    assert denied.status_code == 403
    assert SafetyEvent.objects.count() == 0
    assert SafetyState.objects.filter(kill_switch_engaged=True).count() == 0
    missing = operator.post("/trading/kill-switch", {"engaged": True}, format="json")
    assert missing.status_code == 400
    ok = operator.post("/trading/kill-switch", {"engaged": True, "reason": "drill"}, format="json")
    assert ok.status_code == 200
    assert ok.json() == {"kill_switch_engaged": True, "reason": "drill"}
    assert list(SafetyEvent.objects.values_list("kind", "actor_label")) == [
        ("kill_switch_on", "operator")
    ]


def test_emergency_stop_clear_conflict_when_not_latched(operator):
    response = operator.post("/trading/emergency-stop/clear", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "emergency_stop_not_active"


def test_kill_switch_off_after_on(operator):
    user = get_user_model().objects.get(username="operator")
    kill_switch_set(engaged=True, actor=user, reason="drill")
    operator.post("/trading/kill-switch", {"engaged": False, "reason": "done"}, format="json")
    assert SafetyState.objects.get().kill_switch_engaged is False


def test_emergency_stop_clear_refuses_todays_daily_loss_and_rebases_only_when_asked(operator):
    from trading.models import LaneState

    now = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    state = SafetyState.objects.create(
        scope="global",
        emergency_stop_active=True,
        emergency_stop_reasons=["daily_loss_limit_exceeded:2026-03-03"],
        emergency_stop_triggered_at=now,
    )
    with time_machine.travel(now, tick=False):
        refused = operator.post("/trading/emergency-stop/clear", {"reason": "ok"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "daily_loss_limit_locked"
    assert SafetyEvent.objects.count() == 0

    state.emergency_stop_reasons = ["max_drawdown_exceeded"]
    state.save()
    LaneState.objects.create(
        account_label="paper", equity_high_water_mark=Decimal(2000), last_equity=Decimal(1800)
    )
    body = {"reason": "accept the loss", "rebase_high_water_mark": True}
    cleared = operator.post("/trading/emergency-stop/clear", body, format="json")
    assert cleared.status_code == 200
    assert LaneState.objects.get().equity_high_water_mark == Decimal(1800)
    assert SafetyEvent.objects.get().details == {
        "reasons": ["max_drawdown_exceeded"],
        "rebased_high_water_marks": {"paper": {"from": "2000.000000", "to": "1800.000000"}},
    }


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"engaged": True, "reason": "drill", "engage": True},
            {"engage": ["unknown field"]},
        ),
        ({"engaged": "true", "reason": "drill"}, {"engaged": ["must be a boolean"]}),
        ({"engaged": 1, "reason": "drill"}, {"engaged": ["must be a boolean"]}),
        ({"engaged": True, "reason": 5}, {"reason": ["must be a string"]}),
        ({"engaged": True, "reason": "  "}, {"reason": ["This field may not be blank."]}),
    ],
)
def test_kill_switch_body_is_taken_exactly_as_the_schema_states(operator, body, details):
    """An unknown key or a value of another JSON type is a 400, not dropped or coerced."""
    response = operator.post("/trading/kill-switch", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == details
    assert SafetyEvent.objects.count() == 0
    assert SafetyState.objects.filter(kill_switch_engaged=True).count() == 0


def test_request_body_schemas_are_closed_and_their_strings_refuse_nul():
    from drf_spectacular.generators import SchemaGenerator

    from torghut_site.schema import NO_NUL, NOT_BLANK

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    kill_switch = components["KillSwitchInputRequest"]
    assert kill_switch["additionalProperties"] is False
    assert kill_switch["properties"]["reason"]["pattern"] == NOT_BLANK
    promote = components["PromoteInputRequest"]["properties"]["account_label"]["oneOf"][0]
    assert promote["pattern"] == NO_NUL  # blank allowed: only NUL is refused
    assert "additionalProperties" not in components["FinalizeRequest"]  # lenient, see compat doc


def test_llm_evaluation_date_is_exactly_yyyy_mm_dd(reader):
    for raw in ("2026-3-5", "", "20260305"):
        response = reader.get("/trading/llm-evaluation", {"date": raw})
        assert response.status_code == 400, raw
        assert list(response.json()["error"]["details"]) == ["date"]
    repeated = reader.get("/trading/llm-evaluation?date=2026-03-05&date=2026-03-06")
    assert repeated.json()["error"]["details"] == {"date": ["may be given once"]}
