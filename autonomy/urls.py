"""URLs of walk-forward research, gates, ledger and promotions (none yet)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
