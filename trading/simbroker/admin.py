from django.contrib import admin

from torghut_site.admin_base import ReadOnlyAdmin
from trading.simbroker.models import SimAccount, SimOrder, SimPosition, SimTradeUpdate


@admin.register(SimAccount)
class SimAccountAdmin(ReadOnlyAdmin):
    list_display = ("account_label", "cash", "starting_cash", "update_seq", "updated_at")


@admin.register(SimOrder)
class SimOrderAdmin(ReadOnlyAdmin):
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
class SimPositionAdmin(ReadOnlyAdmin):
    list_display = ("account", "symbol", "qty", "avg_entry_price", "updated_at")


@admin.register(SimTradeUpdate)
class SimTradeUpdateAdmin(ReadOnlyAdmin):
    list_display = ("account", "seq", "event", "created_at", "published_at")
    list_filter = ("event",)
