"""OpenAPI schema helpers: the answers every endpoint can give, and paginated lists.

drf-spectacular documents what a view declares. The answers that come from the framework around
the view (a 401 without credentials, a 403 for the wrong role, a 400 for a malformed body, a 404
for an unknown id, a 429 from a throttle or the sign-in lockout) are added here to every
operation that can give them, so the schema lists every status code the API answers; the
property-based run over the schema (tests/api/test_schema_fuzz.py) holds us to it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

ERROR_SCHEMA = "ErrorResponse"

_ERROR_COMPONENT = {
    "type": "object",
    "description": (
        "`detail` (with a `code` where it helps) for an error about the request as a whole; "
        "otherwise field name -> list of messages."
    ),
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    "400": "invalid input: field name -> messages, or `detail`",
    "401": "not signed in (no or a wrong session or token)",
    "403": "signed in without the role this needs",
    "404": "no such object",
    "429": "too many requests (throttled or locked out); see Retry-After",
}


def _error(code: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
        },
    }


def add_common_errors(result: dict[str, Any], generator: Any, request: Any, public: bool):
    """drf-spectacular postprocessing hook: the framework's own answers on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA] = _ERROR_COMPONENT
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["401", "403", "429"]
            has_input = "requestBody" in operation or any(
                parameter.get("in") in ("query", "path")
                for parameter in operation.get("parameters", [])
            )
            if has_input or method in ("post", "put", "patch"):
                codes.append("400")
            if "{" in path:
                codes.append("404")
            for code in codes:
                operation["responses"].setdefault(code, _error(code))
    return result


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Items per page (default 50, at most 1000)."),
    OpenApiParameter("offset", int, description="Items to skip."),
]


def paginated(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """The response of a LimitOffsetPagination page of `serializer_class` items."""
    name = serializer_class.__name__.removesuffix("Output")
    return inline_serializer(
        f"Paginated{name}List",
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
