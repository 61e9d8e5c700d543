"""Operator notifications (trading/notifications.py): incidents, latches, live approvals,
promotions and whitepaper verdicts posted to webhooks by a Celery task after the commit."""

from __future__ import annotations

from urllib.parse import urlsplit

from torghut_site.settings.base import env


def _url_problem(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        env.problem(f"{name} must be an http(s) URL with a host and no user-info")


# the generic webhook: the canonical JSON body, signed with HMAC-SHA256 of the body under
# TORGHUT_NOTIFY_WEBHOOK_SECRET in `X-Torghut-Signature: sha256=<hex>`; the secret is required
# with the URL (an unsigned post could not be told from a forged one)
TORGHUT_NOTIFY_WEBHOOK_URL = env.str("TORGHUT_NOTIFY_WEBHOOK_URL")
TORGHUT_NOTIFY_WEBHOOK_SECRET = env.secret("TORGHUT_NOTIFY_WEBHOOK_SECRET")
# a Slack incoming webhook (its URL is the credential): `{"text": ...}` with <, >, & escaped
TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = env.secret("TORGHUT_NOTIFY_SLACK_WEBHOOK_URL")
# one post's whole exchange (connect + answer), per target and attempt
TORGHUT_NOTIFY_TIMEOUT_SECONDS = env.float(
    "TORGHUT_NOTIFY_TIMEOUT_SECONDS", default=5.0, min_value=0.1, max_value=30
)
if TORGHUT_NOTIFY_WEBHOOK_URL:
    _url_problem("TORGHUT_NOTIFY_WEBHOOK_URL", TORGHUT_NOTIFY_WEBHOOK_URL)
    if not TORGHUT_NOTIFY_WEBHOOK_SECRET:
        env.problem("TORGHUT_NOTIFY_WEBHOOK_URL requires TORGHUT_NOTIFY_WEBHOOK_SECRET")
if TORGHUT_NOTIFY_SLACK_WEBHOOK_URL:
    _url_problem("TORGHUT_NOTIFY_SLACK_WEBHOOK_URL", TORGHUT_NOTIFY_SLACK_WEBHOOK_URL)
