"""Service-level endpoints: liveness, identity, schema status."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from torghut_site.selectors import schema_status


class ProbeView(APIView):
    """Unauthenticated, unthrottled: used by orchestrator probes and scrapers."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


class HealthzApi(ProbeView):
    @extend_schema(
        responses=inline_serializer(
            "Healthz", {"status": serializers.CharField(), "service": serializers.CharField()}
        )
    )
    def get(self, request: Request) -> Response:
        # liveness only: never touches the database
        return Response({"status": "ok", "service": "torghut"})


class RootApi(ProbeView):
    @extend_schema(
        responses=inline_serializer(
            "ServiceInfo",
            {
                "service": serializers.CharField(),
                "status": serializers.CharField(),
                "version": serializers.CharField(),
                "commit": serializers.CharField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "service": "torghut",
                "status": "ok",
                "version": settings.TORGHUT_VERSION,
                "commit": settings.TORGHUT_COMMIT,
            }
        )


class DbCheckApi(ProbeView):
    class OutputSerializer(serializers.Serializer[object]):
        ok = serializers.BooleanField()
        schema_current = serializers.BooleanField()
        unapplied_migrations = serializers.ListField(child=serializers.CharField())
        current_heads = serializers.ListField(child=serializers.CharField())
        expected_heads = serializers.ListField(child=serializers.CharField())
        error = serializers.CharField(required=False)

    @extend_schema(responses={200: OutputSerializer, 503: OutputSerializer})
    def get(self, request: Request) -> Response:
        result = schema_status()
        body: dict[str, object] = {
            "ok": result.current,
            "schema_current": result.current,
            "current_heads": result.current_heads,
            "expected_heads": result.expected_heads,
            "unapplied_migrations": result.unapplied_migrations,
        }
        if not result.reachable:
            body["error"] = "database unavailable"
        elif result.unapplied_migrations:
            body["error"] = "database schema mismatch; migrations pending"
        code = status.HTTP_200_OK if result.current else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(body, status=code)
