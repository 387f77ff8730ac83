"""The API's JSON parser: refuses, field by field, what parses as JSON but cannot be stored.

Postgres text and jsonb hold no NUL character and no lone UTF-16 surrogate, its bigint stops at
2**63 - 1, and Python's own JSON code recurses once per level of nesting. Each of those used to
reach the database or the encoder and answer 500; here they answer 400 naming the field (the
top-level key) and the path inside it.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

# Deeper than any payload the API takes (a workspace draft is a few levels), far below the
# recursion limits of the encoders that will see the data after us.
MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _problem(value: Any) -> str | None:
    if isinstance(value, str):
        match = _UNSTORABLE.search(value)
        if match is None:
            return None
        if match.group() == "\x00":
            return "contains a NUL character (\\u0000), which cannot be stored"
        return "contains a lone UTF-16 surrogate, which is not valid Unicode text"
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            return "is out of range: give a whole number below 2**63"
    return None


def find_unstorable(data: Any) -> tuple[list[str], str] | None:
    """The first (path, message) of a value that cannot be stored, or None; never recurses."""
    stack: list[tuple[list[str], Any]] = [([], data)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_DEPTH:
            return path[:1], f"is nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, dict):
            for key, item in value.items():
                if (message := _problem(key)) is not None:
                    return path, f"has a key that {message}"
                stack.append(([*path, str(key)], item))
        elif isinstance(value, list):
            stack.extend(([*path, str(index)], item) for index, item in enumerate(value))
        elif (message := _problem(value)) is not None:
            return path, message
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser plus the checks above, as field-level validation errors."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON nested too deeply (at most {MAX_DEPTH} levels).") from exc
        found = find_unstorable(data)
        if found is not None:
            path, message = found
            field = path[0] if path and isinstance(data, dict) else "non_field_errors"
            where = ".".join(path) or "the body"
            raise ValidationError({field: [f"{where} {message}."]})
        return data
