import pytest

from trading.strategies import Strategy, get_strategy, strategy_types
from trading.strategies.intraday_tsmom import IntradayTsmom
from trading.strategies.legacy_macd_rsi import LegacyMacdRsi


def test_get_strategy():
    legacy = get_strategy("legacy_macd_rsi")
    assert isinstance(legacy, LegacyMacdRsi)
    assert (legacy.name, legacy.version) == ("legacy_macd_rsi", "1.0.0")
    tsmom = get_strategy("intraday_tsmom")
    assert isinstance(tsmom, IntradayTsmom)
    assert (tsmom.name, tsmom.version) == ("intraday_tsmom", "1.1.0")
    assert get_strategy("intraday_tsmom_v1") is tsmom
    assert isinstance(legacy, Strategy) and isinstance(tsmom, Strategy)
    assert strategy_types() == ("intraday_tsmom", "intraday_tsmom_v1", "legacy_macd_rsi")


def test_unknown_strategy_type():
    with pytest.raises(
        KeyError,
        match="unknown strategy type 'momentum'; known types: "
        "intraday_tsmom, intraday_tsmom_v1, legacy_macd_rsi",
    ):
        get_strategy("momentum")
