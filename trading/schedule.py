"""Trading entries of the Celery beat schedule."""

from __future__ import annotations

from typing import Any


def trading_schedule() -> list[tuple[str, dict[str, Any]]]:
    return []
