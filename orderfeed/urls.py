"""URLs of the Kafka trade-update consumer (none yet)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
