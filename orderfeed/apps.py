from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _sim_updates_flush(*, account_label: str) -> int:
    # imported on first use: the Kafka client is loaded only by a process that publishes
    from orderfeed.simfeed import sim_trade_updates_flush

    return sim_trade_updates_flush(account_label=account_label)


def _status() -> dict[str, Any]:
    from orderfeed.selectors import order_feed_status

    return order_feed_status()


class OrderfeedConfig(AppConfig):
    name = "orderfeed"
    verbose_name = "Order feed"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orderfeed.api_responses import OrderFeedStatusSerializer
        from orderfeed.probe_metrics import order_feed_probe_metrics
        from orderfeed.schedule import orderfeed_schedule
        from torghut_site.metrics import register_scrape_collector
        from torghut_site.schedule import schedule_register
        from trading.ports import order_feed_register, status_section_register

        # trading reaches the order feed only through these ports (trading/ports.py)
        order_feed_register(sim_updates_flush=_sim_updates_flush, status=_status)
        # the `order_feed` block of /trading/status, with its closed schema
        status_section_register(
            name="order_feed", section=_status, schema=OrderFeedStatusSerializer
        )
        schedule_register(self.label, orderfeed_schedule)
        register_scrape_collector(order_feed_probe_metrics)
