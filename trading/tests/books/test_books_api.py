"""GET /trading/books: token-authenticated, per lane, Decimal values as strings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.conftest import paper_lane
from torghut_site.auth import api_token_issue
from trading.models import PositionSnapshot
from trading.tests.books.helpers import fill

pytestmark = pytest.mark.django_db


@pytest.fixture
def lanes(settings):
    settings.TRADING_LANES = [paper_lane(), paper_lane("second")]


@pytest.fixture
def token_client():
    user = get_user_model().objects.create_user("reader", password="x")
    client = APIClient()
    issued = api_token_issue(user=user, name="books-tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    return client


def test_books_require_authentication(lanes):
    response = APIClient().get("/trading/books")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_books_per_lane_with_decimal_strings(lanes, token_client):
    fill("a", "AAPL", "buy", "10", "100", minute=1)
    fill("a", "AAPL", "sell", "4", "110", minute=2)
    fill(None, "AAPL", "buy", "1", "105", minute=3)
    fill("a", "MSFT", "buy", "2", "50", minute=1, account_label="second")
    PositionSnapshot.objects.create(
        account_label="paper",
        as_of=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
        equity=100000,
        cash=100000,
        buying_power=100000,
        positions=[{"symbol": "AAPL", "qty": "7", "market_value": "840", "side": "long"}],
    )
    response = token_client.get("/trading/books", {"account": "paper"})
    assert response.status_code == 200
    assert response.json() == {
        "books": [
            {
                "account_label": "paper",
                "strategy": "a",
                "symbol": "AAPL",
                "position": "6.00000000",
                "avg_cost": "100.000000",
                "realised_pnl": "40.000000",
                "mark": "120.000000",
                "unrealised_pnl": "120.000000",
                "buy_qty": "10.00000000",
                "sell_qty": "4.00000000",
                "buy_notional": "1000.000000",
                "sell_notional": "440.000000",
            }
        ],
        "unattributed": [
            {
                "account_label": "paper",
                "strategy": None,
                "symbol": "AAPL",
                "position": "1.00000000",
                "avg_cost": "105.000000",
                "realised_pnl": "0.000000",
                "mark": "120.000000",
                "unrealised_pnl": "15.000000",
                "buy_qty": "1.00000000",
                "sell_qty": "0.00000000",
                "buy_notional": "105.000000",
                "sell_notional": "0.000000",
            }
        ],
    }
    every = token_client.get("/trading/books").json()
    assert [(x["account_label"], x["symbol"]) for x in every["books"]] == [
        ("paper", "AAPL"),
        ("second", "MSFT"),
    ]
    assert every["books"][1]["unrealised_pnl"] is None  # no snapshot of "second": no mark


def test_books_of_an_unknown_lane_is_404(lanes, token_client):
    response = token_client.get("/trading/books", {"account": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_lane"
