"""The strategy admin shows the promoted uncertainty action and does not let it be edited."""

from __future__ import annotations

import pytest

from trading.models import Strategy

pytestmark = pytest.mark.django_db


def test_uncertainty_action_is_listed_and_read_only(admin_client):
    strategy = Strategy.objects.create(
        name="macd", strategy_type="legacy_macd_rsi", uncertainty_action="abstain"
    )
    listing = admin_client.get("/admin/trading/strategy/?uncertainty_action__exact=abstain")
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    page = admin_client.get(f"/admin/trading/strategy/{strategy.pk}/change/")
    assert page.status_code == 200
    assert "uncertainty_action" not in page.context["adminform"].form.fields
    assert "uncertainty_action" in page.context["adminform"].readonly_fields
