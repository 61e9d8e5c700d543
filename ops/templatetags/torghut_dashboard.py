"""`{% at_a_glance %}`: the operators' summary on the admin index and the dashboard page."""

from __future__ import annotations

from typing import Any

from django import template

from ops.dashboard import glance

register = template.Library()


@register.inclusion_tag("admin/torghut/glance.html")
def at_a_glance() -> dict[str, Any]:
    try:
        return {"glance": glance(), "error": ""}
    except Exception as exc:  # noqa: BLE001 - the admin index must render even if the DB is down
        return {"glance": None, "error": type(exc).__name__}
