"""The fill check's wiring: the beat entry, the task over the configured Alpaca data API, the
admin list, and the settings' start-up validation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.conftest import manage, staff_user
from torghut_site.schedule import beat_schedule
from trading.models import FillCheck
from trading.tasks import fill_checks_run
from trading.tests.books.helpers import T0
from trading.tests.fills.helpers import bar, filled


def test_the_check_is_scheduled_every_5_minutes_only_with_the_data_api_keys(settings):
    settings.APCA_API_KEY_ID, settings.APCA_API_SECRET_KEY = "", ""
    assert "trading-fill-checks" not in beat_schedule()
    settings.APCA_API_KEY_ID, settings.APCA_API_SECRET_KEY = "key", "secret"
    assert beat_schedule()["trading-fill-checks"] == {
        "task": "trading.tasks.fill_checks_run",
        "schedule": 300.0,
        "kwargs": {},
        "options": {"expires": 300.0},
    }
    assert (fill_checks_run.soft_time_limit, fill_checks_run.time_limit) == (240, 270)


@pytest.mark.django_db
def test_the_task_checks_through_the_configured_data_api(settings, alpaca):
    settings.APCA_API_KEY_ID, settings.APCA_API_SECRET_KEY = alpaca.key, alpaca.secret
    settings.APCA_DATA_API_BASE_URL = alpaca.url
    alpaca.bars = {"AAPL": [bar(0, "99", "101", 1000)]}
    filled("macd", "AAPL", "buy", "1", "102", minute=0)
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        assert fill_checks_run() == {
            "checked": {"price_outside_bar": 1},
            "not_settled": 0,
            "failed": [],
        }
        assert fill_checks_run()["checked"] == {}  # idempotent
    assert FillCheck.objects.get().repriced_price == Decimal(103)
    # one bars request, answered (the stand-in refuses any other key)
    assert [(r.path, r.headers.get("apca-api-key-id")) for r in alpaca.requests] == [
        ("/v2/stocks/bars", alpaca.key)
    ]


@pytest.mark.django_db
def test_admin_lists_fill_checks_by_verdict_and_symbol_read_only(client, settings, alpaca):
    alpaca.bars = {"AAPL": [bar(0, "99", "101", 1000)]}
    filled("macd", "AAPL", "buy", "1", "102", minute=0)
    filled("macd", "AAPL", "buy", "1", "100", minute=0)
    filled("macd", "MSFT", "buy", "1", "50", minute=0)
    settings.APCA_API_KEY_ID, settings.APCA_API_SECRET_KEY = alpaca.key, alpaca.secret
    settings.APCA_DATA_API_BASE_URL = alpaca.url
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        fill_checks_run()
    client.force_login(staff_user("viewer", "view_fillcheck"))
    url = "/admin/trading/fillcheck/"

    def listed(query: str) -> list[str]:
        response = client.get(url + query)
        assert response.status_code == 200
        return sorted(str(row) for row in response.context["cl"].result_list)

    assert listed("?verdict__exact=price_outside_bar") == [
        "buy 1.00000000 AAPL @ 102.000000 [price_outside_bar]"
    ]
    assert listed("?q=MSFT") == ["buy 1.00000000 MSFT @ 50.000000 [no_bar]"]
    assert len(listed("")) == 3
    check = FillCheck.objects.get(verdict="price_outside_bar")
    page = client.get(f"{url}{check.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/trading/execution/{check.execution_id}/change/" in page.content.decode()
    assert client.post(f"{url}{check.pk}/delete/").status_code == 403
    assert client.get(url + "add/").status_code == 403
    assert FillCheck.objects.count() == 3


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        (
            {"TRADING_FILL_CHECK_MAX_PARTICIPATION": "0"},
            "TRADING_FILL_CHECK_MAX_PARTICIPATION=0 must be > 0 and <= 1 (a fraction of the "
            "bar's volume)",
        ),
        (
            {"TRADING_FILL_CHECK_MAX_PARTICIPATION": "1.5"},
            "TRADING_FILL_CHECK_MAX_PARTICIPATION=1.5 must be > 0 and <= 1 (a fraction of the "
            "bar's volume)",
        ),
        (
            {"TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS": "-1"},
            "TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS=-1 must be >= 0",
        ),
        (
            {"TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS": "1001"},
            "TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS=1001 must be <= 1000",
        ),
    ],
)
def test_bad_thresholds_stop_startup_naming_the_variable(env, problem):
    result = manage("check", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "torghut cannot start: invalid configuration",
        f"  - {problem}",
    ]
