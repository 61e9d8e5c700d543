from django.apps import AppConfig


class OrderfeedConfig(AppConfig):
    name = "orderfeed"
    verbose_name = "Order feed"
    default_auto_field = "django.db.models.BigAutoField"
