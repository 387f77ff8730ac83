"""Import MATH-style problems: one JSON object per line with ``problem``, ``answer`` and
optionally ``solution``, ``subject``, ``level`` ("Level N") and ``unique_id``."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models.functions import MD5

from labeling.imports.common import (
    ImportResult,
    LineReader,
    Source,
    batched,
    iter_json_records,
    lock_imports,
    open_source,
    paused_gc,
    require_lines,
    text_md5,
)
from labeling.models import Problem

_LEVEL = re.compile(r"^Level (\d{1,9}|\?)$")
MAX_LEVEL = 32767  # a small integer column; MATH's levels are 1 to 5


def import_problems(
    path: Source, *, progress: bool = False, batch_size: int = 2000, split: str | None = None
) -> ImportResult:
    """Import problems atomically; a problem already present (same ``unique_id``, or same
    text) is skipped, except that one created from PRM800K text alone gets the record's
    ``unique_id``, subject, level and split. ``split`` defaults to the first part of
    ``unique_id`` ("test/...")."""
    result = ImportResult(kind="problems")
    with open_source(path) as (handle, size), paused_gc(), transaction.atomic():
        lock_imports()
        seen_texts: set[str] = set()
        seen_ids: set[str] = set()
        records = iter_json_records(handle, size, progress)
        parsed = (_parse(number, data, split) for number, data in records)
        for problems in batched(parsed, batch_size):
            result.lines += len(problems)
            _write(problems, result, seen_texts, seen_ids)
        require_lines(result)
    return result


def _level(read: LineReader, raw: Any) -> int | None:
    """MATH's "Level N" (or N); "Level ?" and null are no level."""
    if raw is None:
        return None
    if type(raw) is int:
        level = raw
    elif isinstance(raw, str) and (match := _LEVEL.match(raw)):
        if match.group(1) == "?":
            return None
        level = int(match.group(1))
    else:
        raise read.fail("level", f'must be "Level N" or an integer, got {raw!r:.80}')
    if not 0 <= level <= MAX_LEVEL:
        raise read.fail("level", f"must be between 0 and {MAX_LEVEL}, got {level}")
    return level


def _parse(number: int, data: Any, split: str | None) -> tuple[int, Problem]:
    read = LineReader(number)
    record = read.object(data, "")
    text = read.string(record, "problem", "problem", non_empty=True)
    answer = read.string(record, "answer", "answer")
    solution = read.string(record, "solution", "solution", optional=True) or ""
    subject = read.string(record, "subject", "subject", optional=True) or ""
    if len(subject) > 64:
        raise read.fail("subject", "must be at most 64 characters")
    unique_id = read.string(record, "unique_id", "unique_id", optional=True, non_empty=True)
    if unique_id is not None and len(unique_id) > 255:
        raise read.fail("unique_id", "must be at most 255 characters")
    level = _level(read, record.get("level"))
    if split is None:
        split = unique_id.split("/", 1)[0] if unique_id and "/" in unique_id else ""
    problem = Problem(
        text=text,
        reference_answer=answer,
        reference_solution=solution,
        subject=subject,
        level=level,
        source_id=unique_id,
        split=split[:16],
    )
    return number, problem


def _write(
    problems: list[tuple[int, Problem]],
    result: ImportResult,
    seen_texts: set[str],
    seen_ids: set[str],
) -> None:
    hashes = {text_md5(problem.text) for _, problem in problems}
    source_ids = {problem.source_id for _, problem in problems if problem.source_id}
    existing_by_text = {
        problem.text: problem
        for problem in Problem.objects.annotate(text_hash=MD5("text")).filter(text_hash__in=hashes)
    }
    existing_ids = set(
        Problem.objects.filter(source_id__in=source_ids).values_list("source_id", flat=True)
    )
    to_create = []
    to_describe = []
    for _, problem in problems:
        existing = existing_by_text.get(problem.text)
        if existing is not None and existing.source_id is None and problem.source_id:
            if problem.source_id not in existing_ids | seen_ids:
                # Created earlier from PRM800K text alone: add the MATH metadata, but leave the
                # reference answer and solution as they are (exports reproduce lines from them).
                existing.source_id = problem.source_id
                existing.subject = existing.subject or problem.subject
                existing.level = existing.level if existing.level is not None else problem.level
                existing.split = existing.split or problem.split
                seen_ids.add(problem.source_id)
                to_describe.append(existing)
                continue
        if (
            existing is not None
            or problem.text in seen_texts
            or (problem.source_id and problem.source_id in existing_ids | seen_ids)
        ):
            result.count("skipped", "problems")
            continue
        seen_texts.add(problem.text)
        if problem.source_id:
            seen_ids.add(problem.source_id)
        to_create.append(problem)
    Problem.objects.bulk_create(to_create, batch_size=1000)
    Problem.objects.bulk_update(to_describe, ["source_id", "subject", "level", "split"])
    result.count("created", "problems", len(to_create))
    if to_describe:
        result.count("created", "problem_metadata", len(to_describe))
