"""Shared fixtures: API clients and the real servers the suite starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent


def paper_lane(label: str = "paper", **changes: Any) -> dict[str, Any]:
    """One account lane on the built-in simulated broker, as `settings.TRADING_LANES` holds it."""
    lane: dict[str, Any] = {
        "label": label,
        "mode": "paper",
        "broker": "simulated",
        "enabled": True,
        "api_key": "",
        "secret_key": "",
        "base_url": "",
    }
    return {**lane, **changes}


def use_replay_trading(settings: Any, signals_path: Path | str) -> Any:
    """Trading on, flags and kill switch off, one simulated paper lane replaying `signals_path`
    once at recorded speed with market orders and no strategy catalog."""
    settings.TRADING_ENABLED = True
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_SIGNAL_SOURCE = "replay"
    settings.TRADING_SIGNAL_REPLAY_PATH = str(signals_path)
    settings.TRADING_SIGNAL_REPLAY_SPEED = 1.0
    settings.TRADING_SIGNAL_REPLAY_LOOP = False
    settings.TRADING_EXECUTION_PREFER_LIMIT = False
    settings.TRADING_STRATEGY_CONFIG_PATH = ""
    settings.TRADING_LANES = [paper_lane()]
    return settings


def staff_user(username: str, *codenames: str, **fields: Any) -> Any:
    """An active staff user holding the given `trading` permissions (by codename)."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(
        username, password=f"pw-{username}-123", **{"is_staff": True, **fields}
    )
    permissions = list(
        Permission.objects.filter(content_type__app_label="trading", codename__in=codenames)
    )
    assert len(permissions) == len(codenames), codenames
    user.user_permissions.add(*permissions)
    return get_user_model().objects.get(pk=user.pk)  # a fresh permission cache


def live_approval_granted(account_label: str, *, hours: int = 1) -> Any:
    """A two-person live approval in force for a configured live lane: requested by one staff
    user, approved by another, through the services."""
    from datetime import timedelta

    from trading.services.live_approvals import live_approval_approve, live_approval_request

    requester = staff_user(f"{account_label}-requester", "add_liveapproval")
    approver = staff_user(f"{account_label}-approver", "approve_liveapproval")
    approval = live_approval_request(
        account_label=account_label,
        actor=requester,
        reason="go-live review",
        ttl=timedelta(hours=hours),
    )
    return live_approval_approve(approval_id=approval.pk, actor=approver, reason="second review")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def flag(key: str, enabled: bool, rollouts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "name": key,
        "type": "BOOLEAN_FLAG_TYPE",
        "enabled": enabled,
        "rules": [],
        "rollouts": rollouts or [],
    }


class FliptServer:
    def __init__(self, url: str) -> None:
        self.url = url

    def set_flags(self, *flags: dict[str, Any]) -> None:
        state = {"namespace": {"key": "default"}, "flags": list(flags)}
        requests.put(f"{self.url}/__admin/state", json=state, timeout=5).raise_for_status()

    def set_delay(self, seconds: float) -> None:
        requests.post(
            f"{self.url}/__admin/delay", json={"seconds": seconds}, timeout=5
        ).raise_for_status()


@pytest.fixture(scope="session")
def flipt_server() -> Iterator[FliptServer]:
    """A Flipt-protocol server (Flipt's own evaluation engine) in its own process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.flipt_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/internal/v1/evaluation/snapshot/namespace/default")
        yield FliptServer(url)
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def flipt(flipt_server: FliptServer, settings) -> Iterator[FliptServer]:
    """Flags enabled against the Flipt server, resolver cache cleared, state reset afterwards."""
    from torghut_site.flags import resolver

    settings.TRADING_FEATURE_FLAGS_ENABLED = True
    settings.TRADING_FEATURE_FLAGS_URL = flipt_server.url
    settings.TRADING_FEATURE_FLAGS_TIMEOUT_MS = 500
    settings.TRADING_FEATURE_FLAGS_CACHE_SECONDS = 0.0
    resolver.reset()
    flipt_server.set_flags()
    flipt_server.set_delay(0)
    yield flipt_server
    resolver.reset()
    flipt_server.set_delay(0)


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def manage(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `manage.py` in a fresh process with exactly the given extra environment."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRADING_", "DB_", "APP_", "DJANGO_"))
    }
    base.update(
        {"DJANGO_SETTINGS_MODULE": "torghut_site.settings", "TORGHUT_ENV_FILE": "/nonexistent"}
    )
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def subprocess_db_dsn() -> str:
    """The test database as a DB_DSN for processes the test starts (needs transactional_db)."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def manage_in_test_db(
    *args: str, env: dict[str, str], fault: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`manage.py` in a fresh process on the test database (needs transactional_db), with
    `fault` as the kill -9 fault point (`TORGHUT_FAULT_INJECT`) when given."""
    full = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "DB_DSN": subprocess_db_dsn(),
        "LOG_LEVEL": "warning",
        **env,
    }
    full.pop("TORGHUT_FAULT_INJECT", None)
    if fault:
        full["TORGHUT_FAULT_INJECT"] = fault
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
