from django.apps import AppConfig


class TorghutSiteConfig(AppConfig):
    """Cross-cutting operations models: API tokens and process heartbeats."""

    name = "torghut_site"
    label = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
