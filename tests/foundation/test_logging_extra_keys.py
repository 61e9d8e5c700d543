"""No log call passes an `extra` field named like a LogRecord attribute: logging raises
KeyError for it, and only when the record is built (a level that is off hides the defect)."""

from __future__ import annotations

import ast
import logging

from tests.conftest import ROOT

APPS = ("torghut_site", "trading", "orderfeed", "whitepapers", "autonomy", "ops")
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _reserved_extra_keys(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in LOG_METHODS:
            continue
        for keyword in node.keywords:
            if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                found.extend(
                    (key.lineno, key.value)
                    for key in keyword.value.keys
                    if isinstance(key, ast.Constant)
                    and isinstance(key.value, str)
                    and key.value in RESERVED
                )
    return found


def test_the_scan_finds_a_reserved_key():
    tree = ast.parse('logger.info("applied", extra={"created": [], "lane": "paper"})')
    assert _reserved_extra_keys(tree) == [(1, "created")]


def test_no_log_call_uses_a_log_record_attribute_as_an_extra_key():
    offenders: list[str] = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            offenders.extend(
                f"{path.relative_to(ROOT)}:{line} {key}" for line, key in _reserved_extra_keys(tree)
            )
    assert offenders == []
