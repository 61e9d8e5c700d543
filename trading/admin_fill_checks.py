"""Admin page of the fill checks (`trading.services.fill_checks`): read-only, filtered by
verdict, searched by symbol."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from torghut_site.admin_base import ReadOnlyAdmin
from trading.models import FillCheck


class FillCheckAdmin(ReadOnlyAdmin):
    list_display = (
        "fill_ts",
        "account_label",
        "symbol",
        "side",
        "qty",
        "price",
        "bar_low",
        "bar_high",
        "bar_volume",
        "participation",
        "verdict",
        "repriced_price",
        "haircut_notional",
    )
    list_filter = ("verdict", "account_label", "side")
    search_fields = ("symbol",)
    date_hierarchy = "fill_ts"
    readonly_fields = ("execution_link",)
    list_select_related = False

    @admin.display(description="execution")
    def execution_link(self, obj: FillCheck) -> SafeString:
        url = reverse("admin:trading_execution_change", args=[obj.execution_id])
        return format_html('<a href="{}">execution {}</a>', url, obj.execution_id)
