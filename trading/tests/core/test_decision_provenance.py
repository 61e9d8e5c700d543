"""Provenance columns in trading: a strategy row names the promotion that applied it, only as a
promotion row and only both values together; the catalog and an admin change of what is traded
clear them (decisions: trading/tests/cycle/test_decision_provenance_cycle.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from tests.conftest import staff_user
from trading.models import SafetyEvent, Strategy
from trading.services.catalog import catalog_apply
from trading.services.strategies import strategy_admin_change

pytestmark = pytest.mark.django_db

CAND = "cand-0123456789ab"


def _promoted(name: str = "promoted", ref: int = 41) -> Strategy:
    return Strategy.objects.create(
        name=name,
        strategy_type="legacy_macd_rsi",
        version="2.1.0",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
        source="promotion",
        promotion_ref=ref,
        promotion_candidate_id=CAND,
    )


@pytest.mark.parametrize(
    ("source", "ref", "cand"),
    [
        ("catalog", 41, CAND),  # a catalog row names no promotion
        ("admin", 41, CAND),
        ("promotion", 41, ""),  # both values or neither
        ("promotion", None, CAND),
        ("promotion", 0, CAND),
    ],
)
def test_strategy_provenance_constraint(source, ref, cand):
    with pytest.raises(IntegrityError), transaction.atomic():
        Strategy.objects.create(
            name="x",
            strategy_type="legacy_macd_rsi",
            source=source,
            promotion_ref=ref,
            promotion_candidate_id=cand,
        )
    assert not Strategy.objects.filter(name="x").exists()


def test_a_promotion_row_without_provenance_is_allowed():
    # rows promoted before the columns existed
    row = Strategy.objects.create(name="old", strategy_type="legacy_macd_rsi", source="promotion")
    assert (row.promotion_ref, row.promotion_candidate_id) == (None, "")


def test_the_catalog_clears_the_provenance_of_a_row_it_lists(tmp_path: Path):
    _promoted("alpha")
    path = tmp_path / "strategies.yaml"
    path.write_text("strategies:\n  - name: alpha\n    type: legacy_macd_rsi\n    enabled: true\n")
    catalog_apply(path=path, mode="merge")
    row = Strategy.objects.get(name="alpha")
    assert (row.source, row.promotion_ref, row.promotion_candidate_id) == ("catalog", None, "")


def test_an_admin_change_of_what_is_traded_clears_the_provenance():
    promoter = staff_user("pat", "promote_strategy")
    row = _promoted()
    # turning it off and on again: still the promotion's configuration
    strategy_admin_change(strategy_id=row.pk, changes={"enabled": False}, actor=promoter)
    strategy_admin_change(strategy_id=row.pk, changes={"description": "note"}, actor=promoter)
    row.refresh_from_db()
    assert (row.enabled, row.promotion_ref, row.promotion_candidate_id) == (False, 41, CAND)
    strategy_admin_change(
        strategy_id=row.pk, changes={"params": {"buy_rsi_threshold": 20}}, actor=promoter
    )
    row.refresh_from_db()
    assert (row.source, row.promotion_ref, row.promotion_candidate_id) == ("promotion", None, "")
    event = SafetyEvent.objects.filter(kind="strategy_changed").order_by("pk").last()
    assert event is not None
    assert event.details["cleared_promotion_ref"] == 41
    assert event.details["after"] == {"params": {"buy_rsi_threshold": 20}}


def test_the_strategy_admin_shows_the_provenance_read_only(admin_client):
    row = _promoted()
    page = admin_client.get(f"/admin/trading/strategy/{row.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"]
    assert {"promotion_ref", "promotion_candidate_id"} <= set(form.readonly_fields)
    assert not {"promotion_ref", "promotion_candidate_id"} & set(form.form.fields)
    assert CAND in page.content.decode()
