"""A stand-in for the operators' webhooks: `/hook` (the generic signed webhook) and `/slack`
(a Slack incoming webhook), each answering 200 and keeping what it was sent."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer

SECRET = "notify-test-secret"


class NotifyReceiver(TestHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.route("POST", "/hook", lambda request: Response(200, {"ok": True}))
        self.route("POST", "/slack", lambda request: Response(200, raw=b"ok"))

    def posted(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def configure(self, settings: Any, *, timeout: float = 5.0) -> None:
        settings.TORGHUT_NOTIFY_WEBHOOK_URL = f"{self.url}/hook"
        settings.TORGHUT_NOTIFY_WEBHOOK_SECRET = SECRET
        settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = f"{self.url}/slack"
        settings.TORGHUT_NOTIFY_TIMEOUT_SECONDS = timeout


def signature_valid(request: Request, secret: str = SECRET) -> bool:
    """What a receiver does: HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("x-torghut-signature", ""))
