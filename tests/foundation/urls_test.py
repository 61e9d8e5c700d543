"""A test-only URLconf: small DRF views that exercise the global API configuration."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from torghut_site.drf import LimitOffsetPagination


class EchoSerializer(serializers.Serializer[Any]):
    n = serializers.IntegerField(min_value=1)


class ProtectedApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"user": request.user.get_username()})

    def post(self, request: Request) -> Response:
        data = EchoSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data)


class NumbersApi(APIView):
    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(list(range(1200)), request, view=self)  # type: ignore[arg-type, var-annotated]
        return paginator.get_paginated_response(page)


class ThrottledApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "control"

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("t/protected", ProtectedApi.as_view()),
    path("t/numbers", NumbersApi.as_view()),
    path("t/throttled", ThrottledApi.as_view()),
    path("", include("torghut_site.urls")),
]
