from typing import Any

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
        _connect_token_cache_invalidation()


def _connect_token_cache_invalidation() -> None:
    """Cache invalidation only (the house keeps business rules out of signals): a saved or
    deleted API token or user drops the token lookups cached by `torghut_site.auth`."""
    from django.conf import settings
    from django.db.models.signals import post_delete, post_save

    from torghut_site.auth import api_token_cache_forget, api_token_cache_forget_user
    from torghut_site.models import ApiToken

    def token_changed(sender: Any, instance: ApiToken, **kwargs: Any) -> None:
        api_token_cache_forget(digests=[instance.digest])

    def user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
        if kwargs.get("update_fields") == frozenset({"last_login"}):
            return  # a sign-in changes nothing a token lookup carries that matters
        api_token_cache_forget_user(user_id=instance.pk)

    for name, signal in (("saved", post_save), ("deleted", post_delete)):
        signal.connect(token_changed, sender=ApiToken, weak=False, dispatch_uid=f"token-{name}")
        signal.connect(
            user_changed, sender=settings.AUTH_USER_MODEL, weak=False, dispatch_uid=f"user-{name}"
        )
