from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("admin/trading/safety_panel.html")
def safety_panel() -> dict[str, Any]:
    from trading.selectors.trading import trading_status

    try:
        return {"status": trading_status(), "error": ""}
    except Exception as exc:  # noqa: BLE001 - the admin index must render even if the DB is down
        return {"status": None, "error": type(exc).__name__}
