from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from trading.simbroker.models import SimAccount, SimOrder, SimPosition, SimTradeUpdate


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SimAccount)
class SimAccountAdmin(_ReadOnly):
    list_display = ("account_label", "cash", "starting_cash", "update_seq", "updated_at")


@admin.register(SimOrder)
class SimOrderAdmin(_ReadOnly):
    list_display = (
        "submitted_at",
        "account",
        "symbol",
        "side",
        "order_type",
        "qty",
        "filled_qty",
        "filled_avg_price",
        "status",
        "client_order_id",
    )
    list_filter = ("status", "side", "order_type")
    search_fields = ("client_order_id", "symbol", "order_id")


@admin.register(SimPosition)
class SimPositionAdmin(_ReadOnly):
    list_display = ("account", "symbol", "qty", "avg_entry_price", "updated_at")


@admin.register(SimTradeUpdate)
class SimTradeUpdateAdmin(_ReadOnly):
    list_display = ("account", "seq", "event", "created_at", "published_at")
    list_filter = ("event",)
