"""Sign-in lockout: failed password logins are counted per username and per client address.

After ADMIN_LOGIN_MAX_FAILURES failures for one username (known or not), or from one client
address, within ADMIN_LOGIN_LOCKOUT_SECONDS, that username or address is locked for
ADMIN_LOGIN_LOCKOUT_SECONDS: `LoginLockoutBackend`, first in AUTHENTICATION_BACKENDS, refuses
every attempt of a locked username or address before any backend checks the password, so a
correct password does not get in either. A successful login clears its username's counter (not
the address's: one valid account must not reset the count of an address guessing others).

Counters live in the default cache (Redis in production, shared by every web process). The
client address is DRF's (`BaseThrottle.get_ident`, which honours REST_FRAMEWORK's NUM_PROXIES),
so the API throttles and this lockout agree on who the client is.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from prometheus_client import Counter
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

LOGIN_FAILURES = Counter(
    "torghut_admin_login_failures_total", "Failed password sign-ins (admin), lockouts included."
)
LOGIN_LOCKOUTS = Counter(
    "torghut_admin_login_lockouts_total",
    "Sign-in lockouts started, by what was locked (username or address).",
    ["scope"],
)
LOGIN_REFUSED = Counter(
    "torghut_admin_login_locked_attempts_total",
    "Sign-in attempts refused without a password check because of a lockout.",
)

# set on the request when the lockout refused it, so the failure is not counted again
_REFUSED_ATTR = "_torghut_login_locked"


def _key(kind: str, scope: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return f"login-guard:{kind}:{scope}:{digest}"


def _scopes(request: HttpRequest | None, username: str | None) -> list[tuple[str, str]]:
    """What an attempt is counted against: its username (case-folded) and client address."""
    scopes = []
    if username:
        scopes.append(("username", username.casefold()))
    if request is not None:
        address = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
        if address:
            scopes.append(("address", address))
    return scopes


def login_locked(*, request: HttpRequest | None, username: str | None) -> bool:
    keys = [_key("lock", scope, value) for scope, value in _scopes(request, username)]
    return bool(keys) and bool(cache.get_many(keys))


def login_failure_record(*, request: HttpRequest | None, username: str | None) -> None:
    """Count one failed attempt; start a lockout for each scope that reaches the limit."""
    if request is not None and getattr(request, _REFUSED_ATTR, False):
        return  # refused by a lockout: already counted when the lockout started
    LOGIN_FAILURES.inc()
    window = settings.ADMIN_LOGIN_LOCKOUT_SECONDS
    for scope, value in _scopes(request, username):
        counter = _key("failures", scope, value)
        cache.add(counter, 0, timeout=window)
        try:
            failures = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.add(counter, 1, timeout=window)
            failures = 1
        if failures >= settings.ADMIN_LOGIN_MAX_FAILURES:
            cache.set(_key("lock", scope, value), 1, timeout=window)
            cache.delete(counter)
            LOGIN_LOCKOUTS.labels(scope=scope).inc()
            logger.warning(
                "sign-in locked",
                extra={
                    "lock_scope": scope,
                    "locked_value": value,
                    "failures": failures,
                    "lock_seconds": window,
                },
            )


def login_success_record(*, username: str) -> None:
    cache.delete(_key("failures", "username", username.casefold()))


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """`user_login_failed` receiver (connected in `TorghutSiteConfig.ready`)."""
    username = credentials.get("username")
    login_failure_record(request=request, username=username if isinstance(username, str) else "")


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """`user_logged_in` receiver (connected in `TorghutSiteConfig.ready`)."""
    login_success_record(username=user.get_username())


class LoginLockoutBackend:
    """Authenticates nobody: refuses, before any password check, the attempts of a locked
    username or client address (Django's `authenticate` stops at PermissionDenied and sends
    `user_login_failed`). It has no `get_user`, so no session is ever bound to it (the test
    client's `force_login` picks the first backend that has one)."""

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        username = credentials.get("username")
        if login_locked(request=request, username=username if isinstance(username, str) else ""):
            LOGIN_REFUSED.inc()
            if request is not None:
                setattr(request, _REFUSED_ATTR, True)
            raise PermissionDenied("sign-in locked")


LOCKED_MESSAGE = "Too many failed sign-in attempts. Try again in %(minutes)s min."


class LockoutAwareAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form, saying so when a lockout refused the attempt."""

    def get_invalid_login_error(self) -> ValidationError:
        if getattr(self.request, _REFUSED_ATTR, False) or login_locked(
            request=self.request, username=self.cleaned_data.get("username")
        ):
            minutes = max(1, settings.ADMIN_LOGIN_LOCKOUT_SECONDS // 60)
            return ValidationError(LOCKED_MESSAGE, code="locked", params={"minutes": minutes})
        return super().get_invalid_login_error()
