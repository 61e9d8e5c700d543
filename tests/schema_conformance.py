"""Check an API answer against its component in the published OpenAPI schema, the way
schemathesis's response-conformance check does, for answers the fuzzing's seeded rows cannot
reach (a finished whitepaper run, lanes with state, a detailed status).

The schema is drf-spectacular's (OpenAPI 3.0); `nullable: true` becomes JSON Schema's
`anyOf [..., null]` and the components are validated with jsonschema (Draft 7).
"""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # schemathesis brings it, without stubs


def _json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _components() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    converted: dict[str, Any] = _json_schema(spec["components"])
    return converted


def schema_errors(body: Any, component: str) -> list[str]:
    """Why `body` does not match `#/components/schemas/<component>` (empty when it does)."""
    components = _components()
    assert component in components["schemas"], component
    validator = jsonschema.Draft7Validator(
        {"$ref": f"#/components/schemas/{component}", "components": components}
    )
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(body)
    )


def response_component(path: str, method: str = "get", code: str = "200") -> str:
    """The component the schema names for an answer (`$ref` of its JSON body)."""
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    ref: str = spec["paths"][path][method]["responses"][code]["content"]["application/json"][
        "schema"
    ]["$ref"]
    return ref.rsplit("/", 1)[1]
