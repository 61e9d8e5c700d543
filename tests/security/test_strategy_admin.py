"""Strategy changes in the admin are promotions; the safety controls page needs its permission.

Issue #18: a staff user holding only `trading.change_strategy` enabled a strategy on a live lane
with a 1,000,000 notional limit and 99 % of equity, with no promotion and no audit event; and a
staff user without any permission opened the safety controls page. Every request below goes
through the real admin (session login, CSRF-exempt test client) against the real database.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import live_approval_granted, paper_lane, staff_user
from trading.models import SafetyEvent, Strategy
from trading.services.live_approvals import live_approval_request, live_approval_revoke
from trading.services.strategies import (
    StrategyChangeError,
    strategy_admin_change,
    strategy_change_check,
)

pytestmark = pytest.mark.django_db

PAGES = "/admin/trading/strategy/"
CONTROLS = "/admin/trading/safetystate/controls/"
EDITOR = ("view_strategy", "change_strategy")
PROMOTER = (*EDITOR, "promote_strategy")
LIVE_PROMOTER = (*PROMOTER, "change_live_strategy")
# the finding's values
RISKY = {"enabled": "on", "max_notional_per_trade": "1000000", "max_position_pct_equity": "0.99"}
RISKY_STORED = (True, Decimal("1000000.000000"), Decimal("0.990000"))


@pytest.fixture(autouse=True)
def lanes(settings) -> None:
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]


def _strategy(name: str = "s1", account_labels: list[str] | None = None) -> Strategy:
    return Strategy.objects.create(
        name=name,
        strategy_type="legacy_macd_rsi",
        account_labels=["paper"] if account_labels is None else account_labels,
        universe_symbols=["AAPL"],
        max_notional_per_trade=Decimal("1000"),
        max_position_pct_equity=Decimal("0.05"),
    )


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(strategy: Strategy, **changes: Any) -> dict[str, str]:
    """The change form as the admin posts it, every field filled from the row, then `changes`."""
    data = {
        "name": strategy.name,
        "description": strategy.description,
        "strategy_type": strategy.strategy_type,
        "version": strategy.version,
        "base_timeframe": strategy.base_timeframe,
        "universe_symbols": json.dumps(strategy.universe_symbols),
        "account_labels": json.dumps(strategy.account_labels),
        "params": json.dumps(strategy.params),
        "priority": str(strategy.priority),
        "max_position_pct_equity": str(strategy.max_position_pct_equity or ""),
        "max_notional_per_trade": str(strategy.max_notional_per_trade or ""),
    }
    if strategy.enabled:
        data["enabled"] = "on"
    data.update({k: json.dumps(v) if isinstance(v, list) else v for k, v in changes.items()})
    return data


def _post(client: Client, strategy: Strategy, **changes: Any) -> Any:
    return client.post(f"{PAGES}{strategy.pk}/change/", _form(strategy, **changes))


def _risk(strategy: Strategy) -> tuple[Any, ...]:
    strategy.refresh_from_db()
    return (strategy.enabled, strategy.max_notional_per_trade, strategy.max_position_pct_equity)


def _errors(response: Any) -> list[str]:
    return list(response.context["adminform"].form.non_field_errors())


UNCHANGED = (False, Decimal("1000.000000"), Decimal("0.050000"))


def test_change_permission_alone_leaves_risk_fields_read_only():
    strategy = _strategy(account_labels=["live-1"])
    client = _client(staff_user("editor", *EDITOR))
    page = client.get(f"{PAGES}{strategy.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert sorted(form.fields) == ["description"]
    for name in ("enabled", "account_labels", "max_notional_per_trade", "params", "name"):
        assert name in page.context["adminform"].readonly_fields
    response = _post(client, strategy, account_labels=["live-1", "paper"], **RISKY)
    assert response.status_code == 302  # saved: nothing it may change was changed
    assert _risk(strategy) == UNCHANGED
    assert strategy.account_labels == ["live-1"]
    assert not SafetyEvent.objects.exists()


def test_change_permission_alone_cannot_add_delete_or_bulk_delete():
    strategy = _strategy()
    client = _client(staff_user("editor", *EDITOR, "add_strategy", "delete_strategy"))
    assert client.get(f"{PAGES}add/").status_code == 403
    added = client.post(f"{PAGES}add/", {**_form(strategy, name="new-one"), **RISKY})
    assert added.status_code == 403
    assert client.post(f"{PAGES}{strategy.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(
        PAGES, {"action": "delete_selected", "_selected_action": [strategy.pk], "post": "yes"}
    )
    assert bulk.status_code == 200  # no actions: the list again
    assert list(Strategy.objects.values_list("name", flat=True)) == ["s1"]
    assert not SafetyEvent.objects.exists()


def test_description_change_is_audited():
    strategy = _strategy(account_labels=["live-1"])
    user = staff_user("editor", *EDITOR)
    response = _post(_client(user), strategy, description="notes for the desk")
    assert response.status_code == 302
    event = SafetyEvent.objects.get()
    assert (event.kind, event.actor_id, event.actor_label, event.account_label) == (
        "strategy_changed",
        user.pk,
        "editor",
        "",
    )
    assert event.details == {
        "strategy_id": strategy.pk,
        "strategy": "s1",
        "before": {"description": ""},
        "after": {"description": "notes for the desk"},
        "live_approvals": {},
    }


def test_promoter_changes_a_paper_strategy_and_it_is_audited():
    strategy = _strategy()
    user = staff_user("promoter", *PROMOTER)
    response = _post(_client(user), strategy, **RISKY)
    assert response.status_code == 302
    assert _risk(strategy) == RISKY_STORED
    event = SafetyEvent.objects.get()
    assert (event.kind, event.actor_id, event.actor_label) == (
        "strategy_changed",
        user.pk,
        "promoter",
    )
    assert event.details == {
        "strategy_id": strategy.pk,
        "strategy": "s1",
        "before": {
            "enabled": False,
            "max_position_pct_equity": "0.050000",
            "max_notional_per_trade": "1000.000000",
        },
        "after": {
            "enabled": True,
            "max_position_pct_equity": "0.990000",
            "max_notional_per_trade": "1000000.000000",
        },
        "live_approvals": {},
    }


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["live-1"], ["live-1"]),  # on a live lane
        (["paper"], ["paper", "live-1"]),  # onto a live lane
        (["live-1"], ["paper"]),  # off a live lane
        ([], []),  # every lane, the live one included
    ],
)
def test_live_lane_change_needs_the_live_permission(before, after):
    live_approval_granted("live-1")
    strategy = _strategy(account_labels=before)
    response = _post(
        _client(staff_user("promoter", *PROMOTER)), strategy, account_labels=after, **RISKY
    )
    assert response.status_code == 200
    assert _errors(response) == [
        "promoter lacks the permission trading.change_live_strategy: this strategy trades on "
        "the live lane(s) live-1"
    ]
    assert _risk(strategy) == UNCHANGED
    assert strategy.account_labels == before
    assert not SafetyEvent.objects.filter(kind__startswith="strategy_").exists()


MISSING = (
    "live lane live-1 has no two-person live approval in force: request one and have another "
    "person approve it before changing a strategy that trades on it"
)


@pytest.mark.parametrize("approval", ["none", "requested", "expired"])
def test_live_lane_change_needs_a_recorded_approval(approval, time_machine):
    if approval == "requested":  # asked for, not yet approved by a second person
        live_approval_request(
            account_label="live-1",
            actor=staff_user("asker", "add_liveapproval"),
            reason="ramp",
            ttl=timedelta(hours=1),
        )
    elif approval == "expired":
        time_machine.move_to("2026-12-01T15:00:00Z", tick=False)
        live_approval_granted("live-1", hours=1)
        time_machine.move_to("2026-12-01T16:00:01Z", tick=False)
    strategy = _strategy(account_labels=["live-1"])
    response = _post(_client(staff_user("promoter", *LIVE_PROMOTER)), strategy, **RISKY)
    assert response.status_code == 200
    assert _errors(response) == [MISSING]
    assert _risk(strategy) == UNCHANGED
    assert not SafetyEvent.objects.filter(kind__startswith="strategy_").exists()


def test_live_lane_change_with_both_permissions_and_an_approval_is_saved_and_audited():
    approval = live_approval_granted("live-1")
    strategy = _strategy(account_labels=["live-1"])
    user = staff_user("promoter", *LIVE_PROMOTER)
    response = _post(_client(user), strategy, **RISKY)
    assert response.status_code == 302
    assert _risk(strategy) == RISKY_STORED
    event = SafetyEvent.objects.get(kind="strategy_changed")
    assert (event.actor_id, event.details["live_approvals"]) == (user.pk, {"live-1": approval.pk})
    assert event.details["after"]["enabled"] is True


def test_superuser_also_needs_a_recorded_approval_on_a_live_lane():
    root = get_user_model().objects.create_superuser("root", password="pw-root-1234")
    client = _client(root)
    strategy = _strategy(account_labels=["live-1"])
    refused = _post(client, strategy, **RISKY)
    assert refused.status_code == 200
    assert _errors(refused) == [MISSING]
    assert _risk(strategy) == UNCHANGED
    assert not SafetyEvent.objects.exists()
    approval = live_approval_granted("live-1")
    assert _post(client, strategy, **RISKY).status_code == 302
    assert _risk(strategy) == RISKY_STORED
    event = SafetyEvent.objects.get(kind="strategy_changed")
    assert (event.actor_id, event.details["live_approvals"]) == (root.pk, {"live-1": approval.pk})


def test_promoter_adds_and_deletes_a_paper_strategy_audited():
    user = staff_user("promoter", *PROMOTER, "add_strategy", "delete_strategy")
    client = _client(user)
    template = Strategy(name="fresh", strategy_type="intraday_tsmom", account_labels=["paper"])
    response = client.post(f"{PAGES}add/", _form(template, enabled="on"))
    assert response.status_code == 302
    created = Strategy.objects.get(name="fresh")
    assert (created.enabled, created.source, created.account_labels) == (True, "admin", ["paper"])
    event = SafetyEvent.objects.get()
    assert (event.kind, event.actor_id, event.details["before"]) == (
        "strategy_created",
        user.pk,
        None,
    )
    assert event.details["after"] == {
        "name": "fresh",
        "enabled": True,
        "strategy_type": "intraday_tsmom",
        "version": "1.0.0",
        "base_timeframe": "1Min",
        "universe_symbols": [],
        "account_labels": ["paper"],
        "params": {},
        "priority": 100,
        "max_position_pct_equity": None,
        "max_notional_per_trade": None,
        "description": "",
    }
    response = client.post(f"{PAGES}{created.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Strategy.objects.filter(name="fresh").exists()
    deleted = SafetyEvent.objects.get(kind="strategy_deleted")
    assert (deleted.actor_id, deleted.details["after"]) == (user.pk, None)
    assert deleted.details["before"] == event.details["after"]


def test_adding_a_strategy_for_every_lane_needs_the_live_approval():
    client = _client(staff_user("promoter", *LIVE_PROMOTER, "add_strategy"))
    template = Strategy(name="everywhere", strategy_type="intraday_tsmom", account_labels=[])
    response = client.post(f"{PAGES}add/", _form(template, enabled="on"))
    assert response.status_code == 200
    assert _errors(response) == [MISSING]
    assert not Strategy.objects.exists()
    assert not SafetyEvent.objects.exists()


def test_deleting_a_live_strategy_needs_the_live_permission():
    strategy = _strategy(account_labels=["live-1"])
    client = _client(staff_user("promoter", *PROMOTER, "delete_strategy"))
    assert client.post(f"{PAGES}{strategy.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Strategy.objects.filter(pk=strategy.pk).exists()
    assert not SafetyEvent.objects.exists()


def test_service_refuses_what_the_admin_never_sends():
    strategy = _strategy()
    promoter = staff_user("promoter", *LIVE_PROMOTER)
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"source": "promotion"}, "not_editable"),
        ({"uncertainty_action": "pass"}, "not_editable"),
        # a string would make `label in account_labels` a substring test in the trade cycle
        ({"account_labels": "live-1,paper"}, "invalid_value"),
        ({"params": ["x"]}, "invalid_value"),
    ]
    for changes, code in refusals:
        with pytest.raises(StrategyChangeError) as caught:
            strategy_admin_change(strategy_id=strategy.pk, changes=changes, actor=promoter)
        assert caught.value.code == code
    outsider = get_user_model().objects.create_user("outsider", password="pw-outsider-1")
    with pytest.raises(StrategyChangeError) as caught:
        strategy_change_check(strategy_id=strategy.pk, changes={"enabled": True}, actor=outsider)
    assert caught.value.code == "not_staff"
    strategy.refresh_from_db()
    assert (strategy.source, strategy.account_labels, strategy.params) == ("admin", ["paper"], {})
    assert not SafetyEvent.objects.exists()


def test_approval_revoked_after_the_check_refuses_the_write():
    approval = live_approval_granted("live-1")
    strategy = _strategy(account_labels=["live-1"])
    promoter = staff_user("promoter", *LIVE_PROMOTER)
    plan = strategy_change_check(strategy_id=strategy.pk, changes={"enabled": True}, actor=promoter)
    assert plan.live_approvals == {"live-1": approval.pk}
    live_approval_revoke(
        approval_id=approval.pk, actor=staff_user("revoker", "approve_liveapproval"), reason="stop"
    )
    with pytest.raises(StrategyChangeError) as caught:
        strategy_admin_change(strategy_id=strategy.pk, changes={"enabled": True}, actor=promoter)
    assert caught.value.code == "live_approval_missing"
    assert _risk(strategy) == UNCHANGED


# ------------------------------------------------------------------ the safety controls page


def test_safety_controls_page_refuses_staff_without_permissions():
    client = _client(staff_user("nobody"))
    page = client.get(CONTROLS)
    assert page.status_code == 403
    assert b"kill-switch" not in page.content
    acted = client.post(CONTROLS, {"action": "kill_switch_on", "reason": "why not"})
    assert acted.status_code == 403
    assert not SafetyEvent.objects.exists()


def test_safety_controls_page_shows_state_to_a_viewer_without_the_form():
    client = _client(staff_user("viewer", "view_safetystate"))
    page = client.get(CONTROLS)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="kill-switch"' in body
    assert 'name="action"' not in body
    assert "You need the “Can change safety state” permission to act." in body
    acted = client.post(CONTROLS, {"action": "kill_switch_on", "reason": "not mine"})
    assert acted.status_code == 200
    assert not SafetyEvent.objects.exists()


def test_stored_labels_of_another_shape_count_as_every_lane():
    # `label in "paper,live-1"` is a substring test in the trade cycle: such a row trades on
    # live-1, and a change to it is a live change
    strategy = _strategy(account_labels=["paper"])
    Strategy.objects.filter(pk=strategy.pk).update(account_labels="paper,live-1")
    with pytest.raises(StrategyChangeError) as caught:
        strategy_admin_change(
            strategy_id=strategy.pk,
            changes={"enabled": True},
            actor=staff_user("promoter", *PROMOTER),
        )
    assert caught.value.code == "live_permission_denied"
    assert _risk(strategy) == UNCHANGED
    assert not SafetyEvent.objects.exists()
