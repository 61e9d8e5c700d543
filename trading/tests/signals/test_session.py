from datetime import UTC, datetime

import pytest

from trading.signals.session import expected_while_closed, market_is_open, session_key


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (datetime(2026, 3, 3, 14, 29, 59, tzinfo=UTC), False),  # Tue 09:29:59 EST
        (datetime(2026, 3, 3, 14, 30, tzinfo=UTC), True),  # 09:30 EST
        (datetime(2026, 3, 3, 20, 59, 59, tzinfo=UTC), True),  # 15:59:59 EST
        (datetime(2026, 3, 3, 21, 0, tzinfo=UTC), False),  # 16:00 EST
        (datetime(2026, 7, 7, 13, 30, tzinfo=UTC), True),  # 09:30 EDT (summer time)
        (datetime(2026, 7, 7, 20, 0, tzinfo=UTC), False),  # 16:00 EDT
        (datetime(2026, 3, 7, 15, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 3, 8, 15, 0, tzinfo=UTC), False),  # Sunday
        (datetime(2026, 3, 6, 20, 0, tzinfo=UTC), True),  # Friday 15:00 EST
    ],
)
def test_market_is_open(now, is_open):
    assert market_is_open(now) is is_open


def test_market_is_open_needs_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        market_is_open(datetime(2026, 3, 3, 15, 0))


def test_expected_while_closed():
    assert expected_while_closed("no_signals_in_window") is True
    assert expected_while_closed("cursor_tail_stable") is True
    assert expected_while_closed("empty_batch_advanced") is True
    assert expected_while_closed("cursor_ahead_of_stream") is False
    assert expected_while_closed("clickhouse_url_missing") is False
    assert expected_while_closed(None) is False
    assert expected_while_closed("x", expected={"x"}) is True


def test_session_key_is_new_york_date():
    late_utc = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)  # 20:00 EST on the 3rd
    assert session_key(late_utc) == datetime(2026, 3, 3).toordinal()
