"""API tokens can expire: `expires_at`, set from API_TOKEN_DEFAULT_TTL_DAYS or `--ttl-days`.

Before, a token lived until someone revoked it: a key leaked from a script or a CI log stayed
valid for ever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from torghut_site.auth import api_token_issue
from torghut_site.models import ApiToken

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
URL = "/trading/decisions"


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("token-owner", password="pw-token-owner-1")


def get_with(key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get(URL)


def refused(response) -> None:
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "authentication_failed",
        "message": "Invalid or revoked token.",
        "details": None,
    }


def test_an_expired_token_is_refused_like_a_revoked_one(user):
    with time_machine.travel(NOW, tick=False):
        issued = api_token_issue(user=user, name="one-day", ttl_days=1)
        forever = api_token_issue(user=user, name="forever", ttl_days=0)
    assert issued.token.expires_at == NOW + timedelta(days=1)
    assert forever.token.expires_at is None
    with time_machine.travel(NOW + timedelta(days=1) - timedelta(seconds=1), tick=False):
        assert get_with(issued.key).status_code == 200
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        refused(get_with(issued.key))
    with time_machine.travel(NOW + timedelta(days=3650), tick=False):
        refused(get_with(issued.key))
        assert get_with(forever.key).status_code == 200


def test_the_issuing_command_applies_the_default_ttl(user, settings):
    settings.API_TOKEN_DEFAULT_TTL_DAYS = 30
    out, err = StringIO(), StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("create_api_token", user="token-owner", name="ci", stdout=out, stderr=err)
        call_command(
            "create_api_token", user="token-owner", name="override", ttl_days=2, stdout=StringIO()
        )
        call_command(
            "create_api_token", user="token-owner", name="never", ttl_days=0, stdout=StringIO()
        )
    tokens = {t.name: t.expires_at for t in ApiToken.objects.all()}
    assert tokens == {
        "ci": NOW + timedelta(days=30),
        "override": NOW + timedelta(days=2),
        "never": None,
    }
    key = out.getvalue().strip()
    assert key.startswith("tg_")
    assert err.getvalue().strip() == "expires 2026-12-02T12:00:00+00:00"
    with time_machine.travel(NOW + timedelta(days=30), tick=False):
        refused(get_with(key))

    settings.API_TOKEN_DEFAULT_TTL_DAYS = 0
    api_token_issue(user=user, name="default-off")
    assert ApiToken.objects.get(name="default-off").expires_at is None


def test_the_admin_shows_the_expiry(user):
    with time_machine.travel(NOW, tick=False):
        api_token_issue(user=user, name="shown", ttl_days=7)
    root = get_user_model().objects.create_superuser("token-root", password="pw-token-root-1")
    client = Client()
    client.force_login(root)
    page = client.get("/admin/ops/apitoken/").content.decode()
    assert "column-expires_at" in page
    assert "Nov. 9, 2026, noon" in page
