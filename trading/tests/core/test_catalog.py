from __future__ import annotations

from decimal import Decimal

import pytest

from trading.models import Strategy
from trading.services.catalog import CatalogError, catalog_apply, parse_catalog

CATALOG = """
strategies:
  - name: alpha
    type: legacy_macd_rsi
    enabled: true
    base_timeframe: 1Min
    universe_symbols: [aapl, msft]
    max_notional_per_trade: 500
    max_position_pct_equity: 0.05
    params: {buy_rsi_threshold: 30}
  - name: beta
    universe_type: intraday_tsmom_v1
    description: momentum version=1.1.0
    enabled: false
"""


def test_parse_catalog_normalizes_types_versions_and_symbols():
    entries = parse_catalog(CATALOG)
    assert [e["name"] for e in entries] == ["alpha", "beta"]
    assert entries[0]["strategy_type"] == "legacy_macd_rsi"
    assert entries[0]["universe_symbols"] == ["AAPL", "MSFT"]
    assert entries[0]["max_notional_per_trade"] == Decimal(500)
    assert entries[1]["strategy_type"] == "intraday_tsmom"
    assert entries[1]["version"] == "1.1.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategies: 3", "the catalog needs a `strategies:` list"),
        ("strategies:\n  - type: legacy_macd_rsi", "strategies[0] needs a name"),
        (
            "strategies:\n  - name: x\n    type: nope",
            "strategy 'x': type 'nope' must be one of: legacy_macd_rsi, intraday_tsmom",
        ),
        (
            "strategies:\n  - name: x\n    type: legacy_macd_rsi\n    max_notional_per_trade: lots",
            "strategy 'x': max_notional_per_trade='lots' is not a number",
        ),
    ],
)
def test_parse_catalog_errors(text, message):
    with pytest.raises(CatalogError) as info:
        parse_catalog(text)
    assert str(info.value) == message


@pytest.mark.django_db
def test_catalog_apply_is_hash_gated_and_sync_disables_missing(tmp_path):
    path = tmp_path / "strategies.yaml"
    path.write_text(CATALOG)
    first = catalog_apply(path=path, mode="merge")
    assert (first.applied, first.created, first.updated) == (True, ["alpha", "beta"], [])
    again = catalog_apply(path=path, mode="merge")
    assert again.applied is False
    Strategy.objects.create(
        name="gamma", strategy_type="legacy_macd_rsi", enabled=True, source="catalog"
    )
    Strategy.objects.create(
        name="manual", strategy_type="legacy_macd_rsi", enabled=True, source="admin"
    )
    path.write_text(CATALOG.replace("max_notional_per_trade: 500", "max_notional_per_trade: 750"))
    synced = catalog_apply(path=path, mode="sync")
    assert (synced.applied, synced.updated, synced.disabled) == (True, ["alpha", "beta"], ["gamma"])
    assert Strategy.objects.get(name="alpha").max_notional_per_trade == Decimal(750)
    assert Strategy.objects.get(name="gamma").enabled is False
    assert Strategy.objects.get(name="manual").enabled is True
