from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_init

        from torghut_site.metrics import register_scrape_collector
        from torghut_site.schedule import schedule_register
        from trading import checks  # registers the system checks
        from trading.schedule import trading_schedule
        from trading.selectors.notifications import notification_gauges
        from trading.selectors.safety import safety_metrics
        from trading.selectors.status import signal_continuity_gauges, tca_gauges

        worker_init.connect(checks.dspy_worker_guard, weak=False)
        register_scrape_collector(safety_metrics)
        register_scrape_collector(tca_gauges)
        register_scrape_collector(signal_continuity_gauges)
        register_scrape_collector(notification_gauges)
        schedule_register(self.label, trading_schedule)
