"""OpenAPI description of the project: its authentication schemes and its error answers."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

from torghut_site.drf import ExactInputSerializer, ExactOutputSerializer


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


# the strings a request field takes: no NUL (Postgres cannot store it; DRF's CharField refuses
# it), and, where the field trims whitespace and refuses blank, at least one other character
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


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

    def _map_basic_serializer(self, serializer: Any, direction: Direction) -> dict[str, Any]:
        result: dict[str, Any] = super()._map_basic_serializer(  # type: ignore[no-untyped-call]
            serializer, direction
        )
        if direction == "request" and isinstance(serializer, ExactInputSerializer):
            result["additionalProperties"] = False
        if direction == "response" and isinstance(serializer, ExactOutputSerializer):
            result["additionalProperties"] = False
        return result

    def _map_serializer_field(
        self, field: Any, direction: Direction, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        """A field's schema, with what drf-spectacular leaves out of a request string: the NUL
        refusal and whitespace trimming. A field may add to its schema what only the running
        configuration knows (`schema_overrides()`, e.g. the configured live lanes), or state its
        whole schema itself (`openapi_schema()`, e.g. `torghut_site.drf.BoundedDecimalField`)."""
        whole = getattr(field, "openapi_schema", None)
        if callable(whole):
            stated: dict[str, Any] = whole()
            return stated
        result: dict[str, Any] = super()._map_serializer_field(  # type: ignore[no-untyped-call]
            field, direction, bypass_extensions
        )
        regex = any(isinstance(v, RegexValidator) for v in getattr(field, "validators", []))
        plain = not regex and not {"pattern", "format", "enum"} & set(result)
        if direction == "request" and isinstance(field, serializers.CharField) and plain:
            if result.get("type") == "string":
                blank_refused = field.trim_whitespace and not field.allow_blank
                result["pattern"] = NOT_BLANK if blank_refused else NO_NUL
        overrides = getattr(field, "schema_overrides", None)
        if callable(overrides):
            result.update(overrides())
        return result

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
