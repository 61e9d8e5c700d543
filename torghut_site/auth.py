"""Token authentication with hashed keys (the key itself is never stored)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from torghut_site.models import ApiToken

TOKEN_PREFIX_LENGTH = 8


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
        # token is refused exactly like a revoked or unknown one
        token = (
            ApiToken.objects.select_related("user")
            .filter(digest=digest, revoked_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
