"""The PRM800K line, declared: one msgspec struct per object of a raw PRM800K JSONL line.

The structs are the format's single description. Imports validate each decoded line against them
(`validate_line`), which names the line and the field path of the first problem in the
project's wording; the export tests check each written line against them, key order included
(`shape_problems`). Field order is the order PRM800K writes, which an export must keep.

Bounds come from where the values are stored: `generation` is a 4-byte integer (a round
number), `total_time` a bigint of milliseconds, the labeler id and a human completion's
`source` are short strings. What a struct cannot say (a blank text, an index into a list, a
timestamp that exists) is checked in `parse.py`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta, Struct, inspect

from labeling.imports.common import ImportLineError, type_name

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
FinishReason = Literal["solution", "found_error", "give_up", "bad_problem"]
FINISH_REASONS = get_args(FinishReason)

Rating = Literal[-1, 0, 1] | None
Generation = Annotated[int, Meta(ge=-1, le=INT32_MAX)] | None
Milliseconds = Annotated[int, Meta(ge=0, le=INT64_MAX)] | None
LabelerId = Annotated[str, Meta(max_length=64)]
CompletionSource = Annotated[str, Meta(max_length=32)] | None


class _Object(Struct, forbid_unknown_fields=True):
    """Every PRM800K object: a field this schema does not know could not be exported back."""


class Completion(_Object):
    text: str
    rating: Rating
    flagged: bool | None


class HumanCompletion(_Object):
    text: str
    rating: Rating
    source: CompletionSource
    flagged: bool | None


class LabelStep(_Object):
    completions: list[Completion] | None
    human_completion: HumanCompletion | None
    chosen_completion: Annotated[int, Meta(ge=0)] | None


class Label(_Object):
    steps: list[LabelStep]
    total_time: Milliseconds
    finish_reason: FinishReason


class Phase1Question(_Object):
    problem: str
    ground_truth_answer: str | None


class Phase2Question(_Object):
    problem: str
    ground_truth_solution: str | None
    ground_truth_answer: str | None
    pre_generated_steps: list[str]
    pre_generated_answer: str | None
    pre_generated_verifier_score: float | None


class Phase1Line(_Object):
    labeler: LabelerId
    timestamp: str
    generation: Generation
    is_quality_control_question: bool
    is_initial_screening_question: bool
    question: Phase1Question
    label: Label


class Phase2Line(Phase1Line):
    question: Phase2Question  # same place in the line as phase 1's


PRM800KLine = Phase1Line | Phase2Line


def line_type(data: Any) -> type[Phase1Line]:
    """Phase 2 lines are the ones whose question carries pre-generated steps."""
    question = data.get("question") if isinstance(data, dict) else None
    phase2 = isinstance(question, dict) and "pre_generated_steps" in question
    return Phase2Line if phase2 else Phase1Line


# ---------------------------------------------------------------------------------------------
# Validation: msgspec finds the first problem; it is told in the project's words.


def validate_line(number: int, data: Any) -> Phase1Line:
    """The decoded line as structs, or ImportLineError naming line `number` and the field."""
    schema = line_type(data)
    try:
        return msgspec.convert(data, schema, strict=True)
    except msgspec.ValidationError as error:
        field, detail = explain(str(error), data, schema)
        raise ImportLineError(number, field, detail) from None


_AT = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_NAMED = re.compile(r"field `([^`]*)`")


def explain(message: str, data: Any, schema: type) -> tuple[str | None, str]:
    """(field path, detail) for a msgspec validation message about `data`."""
    match = _AT.match(message)
    what, path = match.group("what"), match.group("path") or "$"
    keys: list[str | int] = [
        name if name else int(index) for name, index in _SEGMENT.findall(path[1:])
    ]
    if what.startswith("Object missing required field"):
        return _path(keys + [_NAMED.search(what).group(1)]), "missing"
    if what.startswith("Object contains unknown field"):
        unknown = _path(keys + [_NAMED.search(what).group(1)])
        return unknown, "unexpected field (it could not be exported back)"
    value = _value_at(data, keys)
    return _path(keys), _must(_type_at(schema, keys), value)


def _path(keys: list[str | int]) -> str | None:
    text = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in keys)
    return text.lstrip(".") or None


def _value_at(data: Any, keys: list[str | int]) -> Any:
    for key in keys:
        data = data[key]
    return data


def _type_at(schema: type, keys: list[str | int]) -> inspect.Type:
    node: inspect.Type = inspect.type_info(schema)
    for key in keys:
        node = _without_null(node)[0]
        if isinstance(node, inspect.StructType):
            node = next(f.type for f in node.fields if f.encode_name == key)
        elif isinstance(node, inspect.ListType):
            node = node.item_type
    return node


def _without_null(node: inspect.Type) -> tuple[inspect.Type, bool]:
    """The type a nullable union allows besides null, and whether null is allowed."""
    if isinstance(node, inspect.UnionType):
        others = [t for t in node.types if not isinstance(t, inspect.NoneType)]
        return others[0], len(others) < len(node.types)
    return node, False


_DECLARED = {frozenset(FINISH_REASONS): FINISH_REASONS}
_NOUNS = {
    inspect.IntType: "an integer",
    inspect.FloatType: "a number",
    inspect.StrType: "a string",
    inspect.BoolType: "true or false",
    inspect.ListType: "an array",
    inspect.StructType: "an object",
}


def _must(node: inspect.Type, value: Any) -> str:
    """The detail for `value` where the schema wants `node`, e.g. "must be at least -1, got -2"."""
    node, nullable = _without_null(node)
    if isinstance(node, inspect.LiteralType):
        # msgspec sorts a literal's values; the message lists them as declared.
        values = [str(v) for v in _DECLARED.get(frozenset(node.values), node.values)]
        if all(isinstance(v, str) for v in node.values):
            wanted = "one of " + ", ".join(values) + (" or null" if nullable else "")
        else:
            wanted = ", ".join(values) + " or null" if nullable else ", ".join(values)
        return f"must be {wanted}, got {json.dumps(value)}"
    if isinstance(node, inspect.IntType) and type(value) is int:
        if node.ge is not None and value < node.ge:
            return f"must be at least {node.ge}, got {value}"
        if node.le is not None and value > node.le:
            return f"must be at most {node.le}, got {value}"
    if isinstance(node, inspect.StrType) and type(value) is str and node.max_length is not None:
        return f"must be at most {node.max_length} characters, got {len(value)}"
    if isinstance(node, inspect.BoolType):
        wanted = "true, false or null" if nullable else "true or false"
    else:
        wanted = _NOUNS.get(type(node), "valid") + (" or null" if nullable else "")
    return f"must be {wanted}, got {type_name(value)}"


# ---------------------------------------------------------------------------------------------
# Shape of written lines (the export tests)


def shape_problems(text: str) -> list[str]:
    """What is wrong with an exported line: schema errors, then keys out of PRM800K's order."""
    data = json.loads(text)
    schema = line_type(data)
    try:
        msgspec.convert(data, schema, strict=True)
    except msgspec.ValidationError as error:
        field, detail = explain(str(error), data, schema)
        return [f"{field}: {detail}"]
    return _order_problems(data, inspect.type_info(schema), "")


def _order_problems(value: Any, node: inspect.Type, path: str) -> list[str]:
    node, _ = _without_null(node)
    if isinstance(node, inspect.StructType) and isinstance(value, dict):
        declared = [f.encode_name for f in node.fields]
        problems = [] if list(value) == declared else [f"{path or '$'}: keys {list(value)}"]
        for f in node.fields:
            problems += _order_problems(value[f.encode_name], f.type, f"{path}.{f.encode_name}")
        return problems
    if isinstance(node, inspect.ListType) and isinstance(value, list):
        return [
            problem
            for index, item in enumerate(value)
            for problem in _order_problems(item, node.item_type, f"{path}[{index}]")
        ]
    return []
