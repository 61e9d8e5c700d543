"""`/trading/status` is cached per process for TRADING_STATUS_CACHE_SECONDS
(trading.status_cache), and a change of a safety latch is never hidden by it: the services move
the shared generation on (now and after the commit), and a flag's new value is a new key."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from trading import status_cache
from trading.models import LaneState, SafetyState
from trading.selectors.trading import trading_status
from trading.services.safety import (
    emergency_stop_clear,
    emergency_stop_latch,
    kill_switch_set,
)

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(settings, monkeypatch):
    settings.TRADING_STATUS_CACHE_SECONDS = 2
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_EMERGENCY_STOP_ENABLED = True
    cache.clear()
    status_cache._entry = None
    ticking = Clock()
    monkeypatch.setattr(status_cache, "_clock", ticking)
    yield ticking
    status_cache._entry = None
    cache.clear()


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("op-status", password="x")


@pytest.fixture
def reader(operator):
    client = APIClient()
    client.force_authenticate(operator)
    return client


def test_a_second_status_within_the_ttl_asks_the_database_nothing(clock, django_assert_num_queries):
    first = trading_status()
    with django_assert_num_queries(0):
        second = trading_status()
    assert second is first
    assert first["as_of"] is not None


def test_the_body_is_computed_again_after_the_ttl(clock):
    LaneState.objects.create(account_label="paper", last_error="old")
    first = trading_status()
    LaneState.objects.filter(account_label="paper").update(last_error="new")
    clock.now += 1.9
    assert trading_status()["lanes"][0]["last_error"] == "old"  # a lane's row may lag the TTL
    clock.now += 0.2
    second = trading_status()
    assert second["lanes"][0]["last_error"] == "new"
    assert second["as_of"] > first["as_of"]


def test_zero_seconds_computes_every_status(clock, settings, django_assert_num_queries):
    settings.TRADING_STATUS_CACHE_SECONDS = 0
    LaneState.objects.create(account_label="paper", last_error="old")
    trading_status()
    LaneState.objects.filter(account_label="paper").update(last_error="new")
    assert trading_status()["lanes"][0]["last_error"] == "new"
    assert status_cache._entry is None


def test_an_engaged_kill_switch_shows_at_once_within_the_ttl(clock, reader, operator):
    before = reader.get("/trading/status").json()
    assert before["kill_switch"] == {"active": False, "source": "", "reason": ""}
    assert before["control_plane_contract"]["kill_switch_engaged"] is False
    kill_switch_set(engaged=True, actor=operator, reason="fat finger")
    after = reader.get("/trading/status").json()
    assert after["kill_switch"] == {"active": True, "source": "manual", "reason": "fat finger"}
    assert after["control_plane_contract"]["kill_switch_engaged"] is True
    kill_switch_set(engaged=False, actor=operator, reason="checked")
    assert reader.get("/trading/status").json()["kill_switch"]["active"] is False


def test_an_emergency_stop_latch_and_its_clear_show_at_once(clock, operator):
    assert trading_status()["rollback"]["emergency_stop_active"] is False
    emergency_stop_latch(
        reasons=["universe_source_unavailable"],
        account_label="paper",
        snapshot={},
        cancel_all_lanes=False,
    )
    latched = trading_status()
    assert latched["rollback"]["emergency_stop_active"] is True
    assert latched["rollback"]["emergency_stop_reasons"] == ["universe_source_unavailable"]
    assert latched["control_plane_contract"]["emergency_stop_active"] is True
    emergency_stop_clear(actor=operator, reason="universe back")
    assert trading_status()["rollback"]["emergency_stop_active"] is False


def test_a_flag_flip_is_a_new_key(clock, settings):
    assert trading_status()["kill_switch"]["active"] is False
    settings.TRADING_KILL_SWITCH_ENABLED = True
    assert trading_status()["kill_switch"] == {
        "active": True,
        "source": "flag",
        "reason": "TRADING_KILL_SWITCH_ENABLED",
    }


def test_a_change_in_another_process_shows_once_it_moves_the_generation(clock):
    trading_status()
    # another process engages the switch: its row, then its generation (the commit's callback)
    SafetyState.objects.update_or_create(scope="global", defaults={"kill_switch_engaged": True})
    assert trading_status()["kill_switch"]["active"] is False  # only the generation tells
    cache.set(status_cache.GENERATION_KEY, "moved-by-another-process", None)
    assert trading_status()["kill_switch"]["active"] is True


def test_the_generation_moves_again_after_the_commit(
    clock, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        kill_switch_set(engaged=True, actor=operator, reason="x")
        during = cache.get(status_cache.GENERATION_KEY)
    assert status_cache._forget in callbacks
    assert during is not None
    assert cache.get(status_cache.GENERATION_KEY) not in (None, during)


def test_a_flushed_cache_never_matches_an_old_entry(clock):
    first = trading_status()
    cache.clear()  # the generation key is gone (flushed or evicted)
    assert trading_status() is not first


def test_a_cold_status_costs_fifteen_queries(clock, django_assert_num_queries):
    # the safety row once, lanes, order feed (window, newest before it, heartbeats, incidents,
    # dead letters), LLM circuit and day, TCA (3, then cached), autonomy (2), decisions by status
    with django_assert_num_queries(15):
        trading_status()
