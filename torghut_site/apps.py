from django.apps import AppConfig


class TorghutSiteConfig(AppConfig):
    """Cross-cutting operations models: API tokens and process heartbeats."""

    name = "torghut_site"
    label = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from torghut_site import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from torghut_site.metrics import register_scrape_collector
        from torghut_site.selectors import heartbeat_age_metrics

        register_scrape_collector(heartbeat_age_metrics)
