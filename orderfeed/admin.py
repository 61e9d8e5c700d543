from django.contrib import admin

from orderfeed.models import OrderEvent
from torghut_site.admin_base import ReadOnlyAdmin


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdmin):
    """Every trade update as it arrived; `unknown_order` rows need an operator."""

    list_display = (
        "received_at",
        "account_label",
        "symbol",
        "event_type",
        "status",
        "qty",
        "filled_qty",
        "avg_fill_price",
        "outcome",
        "execution",
        "source_topic",
        "source_partition",
        "source_offset",
    )
    list_filter = ("outcome", "account_label", "event_type", "source_topic")
    search_fields = ("broker_order_id", "client_order_id", "symbol", "event_fingerprint")
    list_select_related = ("execution",)
    date_hierarchy = "received_at"
