"""Secrets are compared in constant time, never with `==`.

Two checks: a scan of the project's source for `==`/`!=`/`in` comparisons whose operand is named
like a secret (token, secret, signature, digest, password, api key), and spies showing that the
real authentication paths — the workflow token, the GitHub webhook signature — call
`hmac.compare_digest`. API tokens are looked up by their SHA-256 digest, so the lookup compares
digests, never the key.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from torghut_site import auth
from whitepapers import apis as whitepaper_apis

ROOT = Path(__file__).resolve().parents[2]
APPS = ("torghut_site", "trading", "orderfeed", "whitepapers", "autonomy", "ops")
SECRET_NAME = re.compile(r"token|secret|signature|digest|password|passwd|api_?key", re.IGNORECASE)
# names that match the pattern but hold no secret (counts, flags, kinds of token)
NOT_SECRETS = re.compile(
    r"^(max_)?tokens?_(count|budget|limit|usage|kind|type|name|prefix)|_tokens$|^token_count"
    r"|^prefix$|^secret_binding$|^digest_size$"
    r"|^_SIGNATURE$",  # whitepapers/pdf.py: the %PDF magic bytes
    re.IGNORECASE,
)


def _source_files() -> list[Path]:
    files = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = set(path.relative_to(ROOT).parts)
            if parts & {"tests", "migrations"}:
                continue
            files.append(path)
    return files


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


def test_no_secret_is_compared_with_equality():
    offenders = []
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
                continue
            for operand in (node.left, *node.comparators):
                name = _name(operand)
                if isinstance(operand, ast.Constant) or not name:
                    continue
                if SECRET_NAME.search(name) and not NOT_SECRETS.search(name):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} compares {name!r}")
    assert offenders == [], "use hmac.compare_digest for secrets:\n" + "\n".join(offenders)


def test_the_scan_would_catch_a_plain_comparison():
    tree = ast.parse("if presented_token == settings.WHITEPAPER_WORKFLOW_API_TOKEN: pass")
    compare = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    assert SECRET_NAME.search(_name(compare.left))


_compare_digest = hmac.compare_digest


class CompareSpy:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes | str, bytes | str]] = []

    def __call__(self, left, right) -> bool:
        self.calls.append((left, right))
        return _compare_digest(left, right)


@pytest.fixture
def spy(monkeypatch) -> CompareSpy:
    spy = CompareSpy()
    # both modules call it as `hmac.compare_digest`, through their own `hmac` import
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert whitepaper_apis.hmac is auth.hmac is hmac  # type: ignore[attr-defined]
    return spy


def test_workflow_token_is_compared_in_constant_time(db, settings, spy):
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = "the-workflow-token-123"  # noqa: S105
    client = APIClient()
    wrong = client.get("/whitepapers/runs/wp-x", HTTP_AUTHORIZATION="Bearer the-workflow-token-12")
    right = client.get("/whitepapers/runs/wp-x", HTTP_X_WHITEPAPER_TOKEN="the-workflow-token-123")
    assert (wrong.status_code, right.status_code) == (401, 404)
    assert (b"the-workflow-token-12", b"the-workflow-token-123") in spy.calls
    assert (b"the-workflow-token-123", b"the-workflow-token-123") in spy.calls


def test_webhook_signature_is_compared_in_constant_time(db, settings, spy):
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = "hook-secret"  # noqa: S105
    body = json.dumps({"zen": "x"}).encode()
    good = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    response = APIClient().post(
        "/whitepapers/webhooks/github",
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=good,
        HTTP_X_GITHUB_EVENT="ping",
    )
    assert response.json() == {"pong": True}
    assert (good.encode(), good.encode()) in spy.calls


def test_api_tokens_are_found_by_digest_never_by_key(db, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("ct-user", password="pw-ct-user-1")
    issued = auth.api_token_issue(user=user, name="ct")
    token = issued.token
    token.refresh_from_db()
    assert issued.key not in (token.digest, token.prefix)
    assert token.digest == hashlib.sha256(issued.key.encode()).hexdigest()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = APIClient().get("/trading/status", HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert response.status_code == 200
    sql = "\n".join(q["sql"] for q in queries.captured_queries)
    assert issued.key not in sql
    assert token.digest in sql
