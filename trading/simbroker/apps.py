from django.apps import AppConfig


class SimbrokerConfig(AppConfig):
    """The built-in simulated paper broker: the broker's side of the wire, kept in the database."""

    name = "trading.simbroker"
    label = "simbroker"
    verbose_name = "Simulated broker"
    default_auto_field = "django.db.models.BigAutoField"
