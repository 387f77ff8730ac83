"""Pieces every import shares: the result and error types, streaming readers that keep line
numbers, field validators that name the field path, and fast bulk writes (COPY)."""

from __future__ import annotations

import gc
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from django.db import connection
from django.db.models import Model
from tqdm import tqdm

from config.errors import StepwiseError
from labeling.models import Solution, Step

# One key for every import: concurrent imports of overlapping files run one after the other,
# so "exists?" checks and inserts cannot interleave.
IMPORT_ADVISORY_LOCK = 0x5354_4550  # "STEP"

Source = str | Path | IO[bytes]


class ImportLineError(StepwiseError):
    """A line of an import file is not acceptable; nothing from the file is kept. The API answers
    it as a 400 naming the line: ``{"line": n, "field": ..., "detail": ...}``."""

    def __init__(self, line: int, field: str | None, detail: str) -> None:
        self.line = line
        self.field = field
        self.detail = detail
        where = f"line {line}: {field}: " if field else f"line {line}: "
        super().__init__(where + detail)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "detail": self.detail}

    def body(self) -> dict[str, Any]:
        return self.as_dict()


class ImportFileEmpty(ImportLineError):
    """The file holds no line to import (empty, or blank lines only): refused, like a bad line,
    by the commands and the API alike."""

    def __init__(self) -> None:
        super().__init__(0, None, "the file is empty: there is no line to import")
        self.args = (self.detail,)

    def __str__(self) -> str:
        return self.detail

    def body(self) -> dict[str, Any]:
        return {"file": [self.detail]}


def require_lines(result: ImportResult) -> None:
    """Refuse a file that had no line to import (call inside the import's transaction)."""
    if result.lines == 0:
        raise ImportFileEmpty()


@dataclass
class ImportResult:
    """What an import did: lines read, rows created and rows that already existed."""

    kind: str
    lines: int = 0
    created: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: str, name: str, amount: int = 1) -> None:
        target = self.created if bucket == "created" else self.skipped
        target[name] = target.get(name, 0) + amount

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lines": self.lines,
            "created": dict(self.created),
            "skipped": dict(self.skipped),
        }

    def summary(self) -> str:
        created = ", ".join(f"{v} {k}" for k, v in self.created.items() if v) or "nothing"
        skipped = ", ".join(f"{v} {k}" for k, v in self.skipped.items() if v) or "nothing"
        return f"{self.lines} lines: created {created}; already present {skipped}"


def solution_fingerprint(problem_id: int, steps: Sequence[str]) -> str:
    """sha256 over the problem id and the ordered step texts (unambiguous JSON encoding)."""
    payload = json.dumps([problem_id, list(steps)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def text_md5(text: str) -> str:
    """Same value as Postgres ``md5(text)``, which backs Problem's unique-text constraint."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading


@contextmanager
def open_source(source: Source) -> Iterator[tuple[IO[bytes], int | None]]:
    """Open a path (or take an already open binary file) and report its size when known."""
    if isinstance(source, str | Path):
        path = Path(source)
        with path.open("rb") as handle:
            yield handle, path.stat().st_size
        return
    size = None
    try:
        position = source.tell()
        source.seek(0, io.SEEK_END)
        size = source.tell() - position
        source.seek(position)
    except (AttributeError, OSError, ValueError):
        pass
    yield source, size


def _progress_bar(total: int | None, enabled: bool, unit: str) -> tqdm:
    return tqdm(total=total, disable=not enabled, unit=unit, unit_scale=True, dynamic_ncols=True)


def iter_json_lines(
    handle: IO[bytes], size: int | None, progress: bool
) -> Iterator[tuple[int, Any]]:
    """Yield (line number, decoded JSON) for every non-blank line, streaming."""
    with _progress_bar(size, progress, "B") as bar:
        for number, raw in enumerate(handle, start=1):
            bar.update(len(raw))
            if not raw.strip():
                continue
            try:
                yield number, orjson.loads(raw.rstrip(b"\r\n"))
            except orjson.JSONDecodeError as error:
                raise ImportLineError(
                    number, None, f"invalid JSON: {error.msg} (column {error.colno})"
                ) from None


def iter_json_records(
    handle: IO[bytes], size: int | None, progress: bool
) -> Iterator[tuple[int, Any]]:
    """JSONL, or a JSON array (ProcessBench). For an array the number given with each record is
    the line its ``{`` starts on, so errors still point at the file. Arrays are read whole."""
    head = handle.read(64)
    stripped = head.lstrip()
    if not stripped.startswith(b"["):
        yield from iter_json_lines(_Rewound(head, handle), size, progress)
        return
    raw = head + handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ImportLineError(line, None, f"not valid UTF-8 ({error.reason})") from None
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line = text.count("\n", 0, position) + 1
    counted_to = position
    with _progress_bar(len(text), progress, "B") as bar:
        while True:
            position = _skip_space(text, position)
            if position >= len(text):
                raise ImportLineError(line, None, "invalid JSON: the array is not closed")
            if text[position] == "]":
                if text[position + 1 :].strip():
                    trailing = text.count("\n", 0, position) + 1
                    raise ImportLineError(trailing, None, "invalid JSON: extra data after ']'")
                return
            line += text.count("\n", counted_to, position)
            counted_to = position
            try:
                record, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as error:
                raise ImportLineError(
                    error.lineno, None, f"invalid JSON: {error.msg} (column {error.colno})"
                ) from None
            bar.update(end - position)
            yield line, record
            position = _skip_space(text, end)
            if position < len(text) and text[position] == ",":
                position += 1
            elif position < len(text) and text[position] != "]":
                at = text.count("\n", 0, position) + 1
                raise ImportLineError(at, None, "invalid JSON: expected ',' or ']'")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class _Rewound:
    """A binary stream whose first bytes were already read (to sniff the format)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def __iter__(self) -> Iterator[bytes]:
        rest_lines = iter(self._rest)
        first = self._head
        if not first.endswith(b"\n"):
            first += next(rest_lines, b"")
        yield from first.splitlines(keepends=True)
        yield from rest_lines


@contextmanager
def paused_gc() -> Iterator[None]:
    """Parsing builds millions of small dicts and lists; the cyclic collector would rescan them
    over and over (a third of the parse time). They are freed by reference counting anyway, so
    automatic collection is paused for the import and one full collection runs at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Group items; between batches, collect the young generations so that any reference
    cycles left by a batch are freed even while automatic collection is paused."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
            gc.collect(1)
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------------
# Validation: each helper names the field path in its error.


class LineReader:
    """Typed access to one decoded line; every failure is an ImportLineError for that line."""

    def __init__(self, line: int) -> None:
        self.line = line

    def fail(self, path: str | None, detail: str) -> ImportLineError:
        return ImportLineError(self.line, path, detail)

    def object(self, value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path or None, f"must be an object, got {type_name(value)}")
        return value

    def get(self, obj: dict, key: str, path: str) -> Any:
        if key not in obj:
            raise self.fail(path, "missing")
        return obj[key]

    def string(self, obj: dict, key: str, path: str, *, optional: bool = False,
               nullable: bool = False, non_empty: bool = False) -> str | None:  # fmt: skip
        if key not in obj:
            if optional:
                return None
            raise self.fail(path, "missing")
        value = obj[key]
        if value is None and nullable:
            return None
        return self.check_string(value, path, nullable=nullable, non_empty=non_empty)

    def check_string(self, value: Any, path: str, *, nullable: bool = False,
                     non_empty: bool = False) -> str:  # fmt: skip
        if not isinstance(value, str):
            expected = "a string or null" if nullable else "a string"
            raise self.fail(path, f"must be {expected}, got {type_name(value)}")
        if "\x00" in value:
            raise self.fail(path, "must not contain NUL characters")
        if non_empty and not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def boolean(self, obj: dict, key: str, path: str, *, nullable: bool = False) -> bool | None:
        value = self.get(obj, key, path)
        if value is None and nullable:
            return None
        if not isinstance(value, bool):
            expected = "true, false or null" if nullable else "true or false"
            raise self.fail(path, f"must be {expected}, got {type_name(value)}")
        return value

    def integer(self, obj: dict, key: str, path: str, *, nullable: bool = False,
                minimum: int | None = None) -> int | None:  # fmt: skip
        value = self.get(obj, key, path)
        if value is None and nullable:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            expected = "an integer or null" if nullable else "an integer"
            raise self.fail(path, f"must be {expected}, got {type_name(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be at least {minimum}, got {value}")
        return value

    def number(self, obj: dict, key: str, path: str, *, nullable: bool = False) -> float | None:
        value = self.get(obj, key, path)
        if value is None and nullable:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            expected = "a number or null" if nullable else "a number"
            raise self.fail(path, f"must be {expected}, got {type_name(value)}")
        return value

    def rating(self, obj: dict, key: str, path: str) -> int | None:
        value = self.get(obj, key, path)
        if value is None or (type(value) is int and value in (-1, 0, 1)):
            return value
        raise self.fail(path, f"must be -1, 0, 1 or null, got {json.dumps(value)}")

    def array(self, obj: dict, key: str, path: str, *, nullable: bool = False) -> list | None:
        value = self.get(obj, key, path)
        if value is None and nullable:
            return None
        if not isinstance(value, list):
            expected = "an array or null" if nullable else "an array"
            raise self.fail(path, f"must be {expected}, got {type_name(value)}")
        return value

    def no_unknown_keys(self, obj: dict, allowed: frozenset[str], path: str) -> None:
        if obj.keys() <= allowed:
            return
        extra = [key for key in obj if key not in allowed]
        if extra:
            where = f"{path}.{extra[0]}" if path else extra[0]
            raise self.fail(where, "unexpected field (it could not be exported back)")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Writing


def lock_imports() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_ADVISORY_LOCK])


def allocate_ids(model: type[Model], count: int) -> list[int]:
    """Reserve ``count`` primary keys from the table's identity sequence in one query, so
    parents and children can be written with COPY (which returns no ids)."""
    if count == 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Write rows with Postgres COPY; ``fields`` are model field names (``id`` included)."""
    if not rows:
        return 0
    meta = model._meta
    columns = ", ".join(connection.ops.quote_name(meta.get_field(name).column) for name in fields)
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


# Column order of the solution rows both pool and PRM800K imports build.
SOLUTION_COPY_FIELDS = (
    "id",
    "problem",
    "final_answer",
    "grade",
    "generator",
    "source",
    "is_pre_generated",
    "selection_score",
    "fingerprint",
    "num_steps",
    "created_at",
)


def copy_solutions(
    solution_rows: Sequence[Sequence[Any]],
    step_rows: Sequence[Sequence[Any]],
    result: ImportResult,
) -> None:
    """COPY new solutions (``SOLUTION_COPY_FIELDS``) and their steps (id, solution, position, text)."""
    copy_rows(Solution, SOLUTION_COPY_FIELDS, solution_rows)
    copy_rows(Step, ["id", "solution", "position", "text"], step_rows)
    result.count("created", "solutions", len(solution_rows))
    result.count("created", "steps", len(step_rows))
