"""The lane's admin page shows its per-strategy books (server-rendered, read-only)."""

from __future__ import annotations

import pytest

from trading.models import LaneState
from trading.tests.books.helpers import fill

pytestmark = pytest.mark.django_db


def test_lane_page_lists_each_strategys_book(admin_client):
    lane = LaneState.objects.create(account_label="paper")
    fill("a", "AAPL", "buy", "10", "100", minute=1)
    fill("a", "AAPL", "sell", "4", "110", minute=2)
    fill(None, "MSFT", "buy", "1", "50", minute=3)
    page = admin_client.get(f"/admin/trading/lanestate/{lane.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('<table id="strategy-books">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 3  # the header, a's AAPL, the unattributed MSFT
    assert (
        "<tr><td>a</td><td>AAPL</td><td>6.00000000</td><td>100.000000</td><td>40.000000</td>"
        "<td>—</td><td>—</td><td>10.00000000</td><td>4.00000000</td>"
    ) in table
    assert "<td>(unattributed)</td><td>MSFT</td><td>1.00000000</td>" in table


def test_lane_page_without_fills_says_so(admin_client):
    lane = LaneState.objects.create(account_label="empty")
    page = admin_client.get(f"/admin/trading/lanestate/{lane.pk}/change/")
    assert "No filled executions." in page.content.decode()


def test_incident_list_shows_the_lane_and_symbol_of_a_book_mismatch(admin_client):
    from trading.models import Incident

    Incident.objects.create(
        incident_key="book-mismatch:x", kind="book_mismatch", account_label="paper", symbol="AAPL"
    )
    page = admin_client.get("/admin/trading/incident/?kind=book_mismatch")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<td class="field-account_label">paper</td><td class="field-symbol">AAPL</td>' in html
