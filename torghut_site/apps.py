from django.apps import AppConfig


class TorghutSiteConfig(AppConfig):
    """Cross-cutting operations models: API tokens and process heartbeats."""

    name = "torghut_site"
    label = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from torghut_site import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from torghut_site.login_guard import on_user_logged_in, on_user_login_failed
        from torghut_site.metrics import multiprocess_lifecycle_install, register_scrape_collector
        from torghut_site.selectors import heartbeat_age_metrics

        register_scrape_collector(heartbeat_age_metrics)
        multiprocess_lifecycle_install()
        # sign-in lockout counters (framework hooks only; see torghut_site.login_guard)
        user_login_failed.connect(on_user_login_failed, dispatch_uid="torghut-login-failed")
        user_logged_in.connect(on_user_logged_in, dispatch_uid="torghut-logged-in")
