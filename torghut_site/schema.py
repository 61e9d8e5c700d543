"""OpenAPI description of the project: its authentication schemes and its error answers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny


class HashedTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "torghut_site.auth.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>` or `Bearer <key>` (`manage.py create_api_token`)",
        }


class WhitepaperTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "whitepapers.apis.WhitepaperTokenAuthentication"
    name = "whitepaperToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Bearer <WHITEPAPER_WORKFLOW_API_TOKEN>` (or the `x-whitepaper-token` "
            "header): events, dispatch, run detail; not finalize",
        }


class RunTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "whitepapers.apis.RunTokenAuthentication"
    name = "whitepaperRunToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Bearer <finalizeToken>` (or the `x-whitepaper-token` header): the "
            "run's own token, handed to its AgentRun as the `finalizeToken` parameter",
        }


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


class ErrorSerializer(serializers.Serializer[Any]):
    """The one error format of every API answer that is not a success (`torghut_site.drf`)."""

    error = ErrorDetailSerializer()
    request_id = serializers.CharField()


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema plus the error answers every view can give, in the one error
    format: 400 (invalid input), 401 (missing or bad credentials), 403 (no permission, CSRF),
    404 (unknown path parameter), 429 (throttled). A view's own `@extend_schema` responses win."""

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, description in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    OpenApiResponse(ErrorSerializer, description=description), code
                )
        return responses

    def _error_codes(self) -> list[tuple[str, str]]:
        view = self.view
        authenticators = list(getattr(view, "authentication_classes", []))
        permissions = list(getattr(view, "permission_classes", []))
        unsafe = self.method not in ("GET", "HEAD", "OPTIONS")
        codes: list[tuple[str, str]] = []
        if unsafe or self._get_parameters():
            codes.append(("400", "Invalid request"))
        if authenticators:
            codes.append(("401", "Missing, invalid or revoked credentials"))
        checks_csrf = unsafe and SessionAuthentication in authenticators
        if checks_csrf or any(p is not AllowAny for p in permissions):
            codes.append(("403", "Not permitted"))
        if "{" in self.path:
            codes.append(("404", "Not found"))
        if getattr(view, "throttle_classes", None):
            codes.append(("429", "Throttled"))
        return codes
