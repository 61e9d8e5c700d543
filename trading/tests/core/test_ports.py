"""trading/ports.py: trading reaches the order feed only through the ports `orderfeed` registers
at start-up, and no trading module imports an app above it (not even inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from trading import ports

TRADING = Path(__file__).resolve().parents[2]
ABOVE_TRADING = ("orderfeed", "autonomy", "whitepapers")


def test_the_order_feed_registers_its_ports_at_start_up():
    from orderfeed import apps

    assert ports._order_feed.sim_updates_flush is apps._sim_updates_flush
    assert ports._order_feed.status is apps._status
    # and the same status as the `order_feed` block of /trading/status, with its closed schema
    from orderfeed.api_responses import OrderFeedStatusSerializer

    assert ports._status_sections["order_feed"] is apps._status
    assert ports.status_section_schemas()["order_feed"] is OrderFeedStatusSerializer


def test_an_unregistered_port_raises_and_calls_nothing(monkeypatch):
    monkeypatch.setattr(ports, "_order_feed", ports._OrderFeedPorts())
    with pytest.raises(ports.PortNotRegistered, match=r"^order feed: sim_updates_flush "):
        ports.sim_trade_updates_flush(account_label="paper")
    with pytest.raises(ports.PortNotRegistered, match=r"^order feed: status "):
        ports.order_feed_status()


def test_a_registered_port_is_what_trading_calls(monkeypatch):
    calls: list[str] = []

    def flush(*, account_label: str) -> int:
        calls.append(account_label)
        return 7

    monkeypatch.setattr(ports, "_order_feed", ports._OrderFeedPorts())
    ports.order_feed_register(sim_updates_flush=flush, status=lambda: {"enabled": False})
    assert ports.sim_trade_updates_flush(account_label="paper") == 7
    assert ports.order_feed_status() == {"enabled": False}
    assert calls == ["paper"]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_trading_module_imports_an_app_above_trading():
    upward = {
        f"{path.relative_to(TRADING.parent)}: {name}"
        for path in TRADING.rglob("*.py")
        if "tests" not in path.relative_to(TRADING).parts
        for name in _imported_modules(path)
        if name.split(".")[0] in ABOVE_TRADING
    }
    assert upward == set()
