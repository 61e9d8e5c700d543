"""The API token lookup is cached for API_TOKEN_CACHE_SECONDS in the shared cache
(torghut_site.auth), and whatever takes a token away stops it at once: revoking, saving or
deleting the token, deactivating or deleting its user. The expiry is checked on every request,
cached or not, and last_used_at is written at most once a minute per token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.test import APIClient, APIRequestFactory

from torghut_site import auth
from torghut_site.auth import HashedTokenAuthentication, api_token_issue, api_token_revoke
from torghut_site.models import ApiToken

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def cached(settings):
    settings.API_TOKEN_CACHE_SECONDS = 300
    cache.clear()
    auth._last_touched.clear()
    yield
    cache.clear()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("cached-owner", password="pw-cached-owner-1")


def authenticate(key: str):
    request = APIRequestFactory().get("/trading/decisions", HTTP_AUTHORIZATION=f"Token {key}")
    return HashedTokenAuthentication().authenticate(request)


def refused(key: str) -> None:
    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid or revoked token."):
        authenticate(key)


def test_a_cached_lookup_asks_the_database_nothing(cached, user, django_assert_num_queries):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    with django_assert_num_queries(2):  # the lookup and the first last_used_at mark
        found_user, token = authenticate(issued.key)
    assert (found_user.pk, token.pk) == (user.pk, issued.token.pk)
    with django_assert_num_queries(0):
        found_user, token = authenticate(issued.key)
    assert (found_user.username, token.pk) == ("cached-owner", issued.token.pk)


def test_zero_seconds_asks_the_database_every_time(
    cached, settings, user, django_assert_num_queries
):
    settings.API_TOKEN_CACHE_SECONDS = 0
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    authenticate(issued.key)
    with django_assert_num_queries(1):
        authenticate(issued.key)
    assert cache.get(auth.TOKEN_CACHE_PREFIX + issued.token.digest) is None


def test_a_revoked_token_is_refused_at_once(cached, user):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    assert authenticate(issued.key)[1].pk == issued.token.pk
    api_token_revoke(token=issued.token)
    refused(issued.key)
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is not None


def test_a_revoked_token_is_refused_by_the_api_at_once(cached, user):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert client.get("/trading/decisions").status_code == 200
    api_token_revoke(token=issued.token)
    response = client.get("/trading/decisions")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_token_revoked_in_the_admin_form_is_refused_at_once(cached, user):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    authenticate(issued.key)
    token = ApiToken.objects.get(pk=issued.token.pk)
    token.revoked_at = NOW
    token.save()  # what the admin's change form does
    refused(issued.key)


def test_a_deleted_token_is_refused_at_once(cached, user):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    authenticate(issued.key)
    ApiToken.objects.filter(pk=issued.token.pk).delete()
    refused(issued.key)


def test_a_deactivated_user_is_refused_at_once(cached, user):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    other = api_token_issue(user=user, name="other", ttl_days=0)
    authenticate(issued.key)
    authenticate(other.key)
    user.is_active = False
    user.save()
    refused(issued.key)
    refused(other.key)


def test_a_deleted_user_is_refused_at_once(cached, user):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    authenticate(issued.key)
    user.delete()
    refused(issued.key)


def test_a_sign_in_keeps_the_cached_lookup(cached, user, django_assert_num_queries):
    issued = api_token_issue(user=user, name="t", ttl_days=0)
    authenticate(issued.key)
    user.save(update_fields=["last_login"])  # what a sign-in does
    with django_assert_num_queries(0):
        authenticate(issued.key)


def test_an_expired_token_is_refused_from_the_cached_lookup(
    cached, user, django_assert_num_queries
):
    with time_machine.travel(NOW, tick=False):
        issued = api_token_issue(user=user, name="one-day", ttl_days=1)
    with time_machine.travel(NOW + timedelta(days=1) - timedelta(seconds=1), tick=False):
        authenticate(issued.key)
    with (
        time_machine.travel(NOW + timedelta(days=1), tick=False),
        django_assert_num_queries(0),  # the cached lookup, refused on its own expires_at
    ):
        refused(issued.key)


def test_last_used_is_written_at_most_once_a_minute(cached, user, django_assert_num_queries):
    with time_machine.travel(NOW, tick=False):
        issued = api_token_issue(user=user, name="t", ttl_days=0)
        authenticate(issued.key)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == NOW
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False), django_assert_num_queries(0):
        authenticate(issued.key)
    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        with django_assert_num_queries(1):  # the cached copy's mark is old: one UPDATE
            authenticate(issued.key)
        with django_assert_num_queries(0):  # and not again from this process
            authenticate(issued.key)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == NOW + timedelta(seconds=61)


def test_another_process_does_not_write_last_used_again(cached, user):
    with time_machine.travel(NOW, tick=False):
        issued = api_token_issue(user=user, name="t", ttl_days=0)
        authenticate(issued.key)
    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        authenticate(issued.key)
    auth._last_touched.clear()  # a second process, with the same cached copy
    with time_machine.travel(NOW + timedelta(seconds=62), tick=False):
        authenticate(issued.key)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == NOW + timedelta(seconds=61)
