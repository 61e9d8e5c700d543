from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The operators' app, the top floor: the admin dashboards that read every app (the index's
    at a glance, the charts page), the `torghut_dashboard` template tags and the admin of the
    operations models. The models themselves (API tokens, process heartbeats, dead letters) stay
    in `torghut_site`, whose app label is `ops`: the ground floor writes and reads them (token
    auth, the heartbeat task and signal handlers, the Kafka consumer base), so they cannot live
    above it. Listed above `django.contrib.admin` in INSTALLED_APPS so that its
    `admin/index.html` overrides the admin's own."""

    name = "ops"
    label = "ops_console"  # "ops" is torghut_site's label (the /admin/ops/... URLs)
    verbose_name = "Operations console"
