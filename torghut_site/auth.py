"""Token authentication with hashed keys (the key itself is never stored)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from torghut_site.models import ApiToken

TOKEN_PREFIX_LENGTH = 8
# last_used_at is written at most once a minute per token (a compare-and-set UPDATE, so several
# processes do not all write it)
LAST_USED_RESOLUTION = timedelta(seconds=60)
TOKEN_CACHE_PREFIX = "api-token:v1:"  # noqa: S105 - a cache key prefix, not a secret


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def constant_time_equals(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str


def api_token_issue(*, user: User, name: str, ttl_days: int | None = None) -> IssuedToken:
    """A new token for `user`; it expires after `ttl_days` days (None: API_TOKEN_DEFAULT_TTL_DAYS;
    0: never, until revoked)."""
    days = settings.API_TOKEN_DEFAULT_TTL_DAYS if ttl_days is None else ttl_days
    if days < 0:
        raise ValueError(f"ttl_days must be >= 0, not {days}")
    key = "tg_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:TOKEN_PREFIX_LENGTH],
        digest=token_digest(key),
        expires_at=timezone.now() + timedelta(days=days) if days else None,
    )
    return IssuedToken(token=token, key=key)


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    # a queryset update sends no post_save: drop the cached lookup here (now, and again after
    # the commit, so a lookup cached meanwhile from the old row does not outlive it)
    api_token_cache_forget(digests=[token.digest])


def _token_cache_key(digest: str) -> str:
    return TOKEN_CACHE_PREFIX + digest


def api_token_cache_forget(*, digests: list[str]) -> None:
    """Drop the cached lookups of these token digests from the shared cache (every process reads
    it), at once and again after the current transaction commits."""
    if not digests:
        return
    keys = [_token_cache_key(d) for d in digests]
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


def api_token_cache_forget_user(*, user_id: int) -> None:
    """Drop the cached lookups of every token of this user (deactivated, deleted or changed)."""
    digests = list(ApiToken.objects.filter(user_id=user_id).values_list("digest", flat=True))
    api_token_cache_forget(digests=digests)


def _token_lookup(digest: str, now: datetime) -> ApiToken | None:
    """The unrevoked token with this digest and its user: from the shared cache for
    API_TOKEN_CACHE_SECONDS after a database lookup found it (0: every request asks the
    database). Revoking, deleting or saving a token, or saving or deleting its user, drops the
    cached entry (`api_token_cache_forget`, the signals in `torghut_site.apps`); `expires_at`
    and `is_active` are checked by the caller on every request, cached or not."""
    ttl = settings.API_TOKEN_CACHE_SECONDS
    key = _token_cache_key(digest)
    if ttl:
        cached: ApiToken | None = cache.get(key)
        if cached is not None:
            return cached
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is not None and ttl:
        cache.set(key, token, ttl)
    return token


# token pk -> when this process last wrote (or tried to write) its last_used_at: a cached copy
# keeps its old mark, and without this each request would send a no-op UPDATE until its cache
# entry expires. Bounded: cleared whole past LAST_USED_MEMORY tokens.
_last_touched: dict[int, datetime] = {}
LAST_USED_MEMORY = 10_000


def _last_used_touch(token: ApiToken, now: datetime) -> None:
    """Record the use at most once per LAST_USED_RESOLUTION per token: the UPDATE only matches a
    row whose mark is older (so several processes do not all write it), and this process does
    not try again within LAST_USED_RESOLUTION of its last try."""
    stale_before = now - LAST_USED_RESOLUTION
    marks = (token.last_used_at, _last_touched.get(token.pk))
    if any(m is not None and stale_before < m <= now for m in marks):
        return
    if len(_last_touched) >= LAST_USED_MEMORY:
        _last_touched.clear()
    _last_touched[token.pk] = now
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before)
    ).update(last_used_at=now)


class HashedTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` or `Authorization: Bearer <key>`."""

    keywords = ("token", "bearer")

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        digest = token_digest(header[1])
        now = timezone.now()
        # the lookup is by digest, so timing reveals nothing about the key itself; an expired
        # token is refused exactly like a revoked or unknown one (the expiry is checked again
        # here because the lookup may come from the cache)
        token = _token_lookup(digest, now)
        if (
            token is None
            or not token.user.is_active
            or (token.expires_at is not None and token.expires_at <= now)
        ):
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        _last_used_touch(token, now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
