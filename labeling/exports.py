"""Streamed exports of labelings: PRM800K JSONL and stepwise supervision (TRL's format).

Both exports read through a named (server-side) Postgres cursor inside one transaction, so the
process holds one batch of rows at a time whatever the size of the data set.

The PRM800K line is assembled as text by Postgres itself: string concatenation with ``to_json``
for every scalar keeps the key order of the original files, writes the same ``", "``/``": "``
separators as Python's ``json.dumps``, and avoids a parse/serialize round in Python. Floats go
out in Postgres' shortest round-trip form (``extra_float_digits`` > 0), so they load back to the
identical double.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from labeling.models import (
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    Problem,
    Solution,
    Step,
)

# Strategy of phase-1 rounds (labeling.services.PHASE1_STRATEGY; not imported: services imports
# more than an export needs).
PHASE1_STRATEGY = "phase1"
# Rows fetched from the server-side cursor per round trip.
DEFAULT_BATCH_SIZE = 500
_cursor_numbers = itertools.count()


@dataclass(frozen=True, kw_only=True)
class ExportFilter:
    """Which labelings an export covers. ``since`` is inclusive, ``until`` exclusive."""

    generation: int | None = None
    labeler: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_qc: bool = True
    include_screening: bool = True
    finish_reasons: tuple[str, ...] | None = None


# The exported `labeler`: an imported labeler's PRM800K id (so an imported line exports as it
# came), else the labeler's pseudonym. Never the username: exports leave the platform.
_LABELER_ID = "COALESCE(lr.external_id, lr.pseudonym::text)"


def _as_utc(moment: datetime) -> datetime:
    # A naive datetime on the command line or in a query string means UTC, like PRM800K's stamps.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _lit(text: str) -> str:
    """A Python string as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _concat(*parts: str) -> str:
    # One concat() call builds its result in one buffer, where a chain of || copies the growing
    # line once per operator. Every part is non-null here (nulls are spelled out as 'null').
    return "concat(" + ", ".join(parts) + ")"


def _json_float(expr: str) -> str:
    """SQL text of a float8 as JSON; integral values keep a ``.0`` like Python writes them."""
    return (
        f"CASE WHEN {expr} IS NULL THEN 'null' "
        f"WHEN {expr} = trunc({expr}) AND abs({expr}) < 1e15 "
        f"THEN trunc({expr})::bigint::text || '.0' "
        f"ELSE to_json({expr})::text END"
    )


def _json_text(expr: str) -> str:
    return f"COALESCE(to_json({expr})::text, 'null')"


def _json_scalar(expr: str) -> str:
    """Integers and booleans: their SQL text is already their JSON text."""
    return f"COALESCE(({expr})::text, 'null')"


def _json_array(element: str, table: str, where: str, order: str) -> str:
    """``[e1, e2, ...]`` of ``element`` over the matching rows of ``table``; ``[]`` when none."""
    return (
        f"COALESCE((SELECT '[' || string_agg({element}, ', ' ORDER BY {order}) || ']'"
        f" FROM {table} WHERE {where}), '[]')"
    )


def _prm800k_line_sql() -> str:
    """SQL expression of one PRM800K line for the labeling aliased ``l``."""
    utc_ts = "(l.timestamp AT TIME ZONE 'UTC')"
    # Python's isoformat(): microseconds only when non-zero, then always six digits.
    timestamp = _concat(
        "'\"'",
        f"to_char({utc_ts}, 'YYYY-MM-DD\"T\"HH24:MI:SS')",
        f"CASE WHEN date_trunc('second', {utc_ts}) = {utc_ts} THEN '' "
        f"ELSE to_char({utc_ts}, '.US') END",
        "'\"'",
    )
    pre_generated_steps = _json_array(
        "to_json(st.text)::text",
        f"{Step._meta.db_table} st",
        "st.solution_id = s.id",
        "st.position",
    )
    completion = _concat(
        _lit('{"text": '),
        "to_json(c.text)::text",
        _lit(', "rating": '),
        _json_scalar("c.rating"),
        _lit(', "flagged": '),
        _json_scalar("c.flagged"),
        _lit("}"),
    )
    completions = (
        "CASE WHEN ls.completions_null THEN 'null' ELSE "
        + _json_array(
            completion,
            f"{LabeledCompletion._meta.db_table} c",
            "c.labeled_step_id = ls.id",
            "c.position",
        )
        + " END"
    )
    human_completion = (
        "CASE WHEN ls.has_human_completion THEN "
        + _concat(
            _lit('{"text": '),
            _json_text("ls.human_completion_text"),
            _lit(', "rating": '),
            _json_scalar("ls.human_completion_rating"),
            _lit(', "source": '),
            _json_text("ls.human_completion_source"),
            _lit(', "flagged": '),
            _json_scalar("ls.human_completion_flagged"),
            _lit("}"),
        )
        + " ELSE 'null' END"
    )
    labeled_step = _concat(
        _lit('{"completions": '),
        completions,
        _lit(', "human_completion": '),
        human_completion,
        _lit(', "chosen_completion": '),
        _json_scalar("ls.chosen_completion"),
        _lit("}"),
    )
    steps = _json_array(
        labeled_step,
        f"{LabeledStep._meta.db_table} ls",
        "ls.labeling_id = l.id",
        "ls.position",
    )
    # The importer stores a null ground truth (screening questions have them) as "".
    ground_truth_answer = _json_text(
        "NULLIF(COALESCE(l.ground_truth_answer_override, p.reference_answer), '')"
    )
    ground_truth_solution = _json_text(
        "NULLIF(COALESCE(l.ground_truth_solution_override, p.reference_solution), '')"
    )
    phase2_question = _concat(
        _lit(', "ground_truth_solution": '),
        ground_truth_solution,
        _lit(', "ground_truth_answer": '),
        ground_truth_answer,
        _lit(', "pre_generated_steps": '),
        pre_generated_steps,
        _lit(', "pre_generated_answer": '),
        _json_text("s.final_answer"),
        _lit(', "pre_generated_verifier_score": '),
        _json_float("s.selection_score"),
    )
    phase1_question = _concat(_lit(', "ground_truth_answer": '), ground_truth_answer)
    return _concat(
        _lit('{"labeler": '),
        f"to_json({_LABELER_ID})::text",
        _lit(', "timestamp": '),
        timestamp,
        _lit(', "generation": '),
        # PRM800K's phase-1 lines carry no generation: a phase-1 round's labelings neither
        # (the round is still a filter: ``generation=N`` selects them).
        f"CASE WHEN g.strategy = {_lit(PHASE1_STRATEGY)} THEN 'null' "
        f"ELSE {_json_scalar('g.number')} END",
        _lit(', "is_quality_control_question": '),
        "l.is_quality_control::text",
        _lit(', "is_initial_screening_question": '),
        "l.is_screening::text",
        _lit(', "question": {"problem": '),
        "to_json(p.text)::text",
        f"CASE WHEN s.is_pre_generated THEN {phase2_question} ELSE {phase1_question} END",
        _lit('}, "label": {"steps": '),
        steps,
        _lit(', "total_time": '),
        _json_scalar("l.total_time_ms"),
        _lit(', "finish_reason": '),
        "to_json(l.finish_reason)::text",
        _lit("}}"),
    )


def _from_where(export_filter: ExportFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if export_filter.generation is not None:
        where.append("g.number = %s")
        params.append(export_filter.generation)
    if export_filter.labeler is not None:
        # Admins may name a labeler by the exported id or by their username.
        where.append(f"({_LABELER_ID} = %s OR u.username = %s)")
        params.extend([export_filter.labeler, export_filter.labeler])
    if export_filter.since is not None:
        where.append("l.timestamp >= %s")
        params.append(_as_utc(export_filter.since))
    if export_filter.until is not None:
        where.append("l.timestamp < %s")
        params.append(_as_utc(export_filter.until))
    if not export_filter.include_qc:
        where.append("NOT l.is_quality_control")
    if not export_filter.include_screening:
        where.append("NOT l.is_screening")
    if export_filter.finish_reasons is not None:
        where.append("l.finish_reason = ANY(%s)")
        params.append(list(export_filter.finish_reasons))
    sql = (
        f" FROM {Labeling._meta.db_table} l"
        f" JOIN {Solution._meta.db_table} s ON s.id = l.solution_id"
        f" JOIN {Problem._meta.db_table} p ON p.id = s.problem_id"
        f" JOIN {Labeler._meta.db_table} lr ON lr.id = l.labeler_id"
        f" JOIN {get_user_model()._meta.db_table} u ON u.id = lr.user_id"
        f" LEFT JOIN {Generation._meta.db_table} g ON g.id = l.generation_id"
        + (" WHERE " + " AND ".join(where) if where else "")
    )
    return sql, params


def prm800k_query(export_filter: ExportFilter, *, with_id: bool = False) -> tuple[str, list[Any]]:
    """The SELECT producing one PRM800K line (text) per labeling, in labeling id order; with
    ``with_id``, the labeling's id comes first.

    Also used by the export benchmark as the body of its ``COPY (...) TO STDOUT`` baseline.
    """
    from_where, params = _from_where(export_filter)
    columns = ("l.id, " if with_id else "") + f"{_prm800k_line_sql()} AS line"
    return f"SELECT {columns}{from_where} ORDER BY l.id", params


def count_labelings(export_filter: ExportFilter) -> int:
    """How many labelings an export with this filter covers (for progress bars)."""
    from_where, params = _from_where(export_filter)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*){from_where}", params)
        return cursor.fetchone()[0]


def _name_part(text: str) -> str:
    """Text safe in a file name (and a Content-Disposition header): letters, digits, ``.-``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-.")[:64] or "x"


def export_filename(kind: str, export_filter: ExportFilter) -> str:
    """A file name that says what the export holds, e.g.
    ``prm800k_round-3_2026-01-05_to_2026-01-09.jsonl``: the round (``screening`` for -1, else
    ``all-rounds``), the labeler when filtered, the first and last day of the labelings it holds
    (one query; ``empty`` when none match) and what was left out."""
    parts = [kind]
    number = export_filter.generation
    if number is None:
        parts.append("all-rounds")
    else:
        parts.append("screening" if number == -1 else f"round-{number}")
    if export_filter.labeler is not None:
        parts.append(f"labeler-{_name_part(export_filter.labeler)}")
    from_where, params = _from_where(export_filter)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(l.timestamp AT TIME ZONE 'UTC'), max(l.timestamp AT TIME ZONE 'UTC')"
            + from_where,
            params,
        )
        first, last = cursor.fetchone()
    if first is None:
        parts.append("empty")
    elif first.date() == last.date():
        parts.append(first.date().isoformat())
    else:
        parts.append(f"{first.date().isoformat()}_to_{last.date().isoformat()}")
    if not export_filter.include_qc:
        parts.append("no-qc")
    if not export_filter.include_screening:
        parts.append("no-screening")
    return "_".join(parts) + ".jsonl"


def _stream_lines(sql: str, params: list[Any], *, batch_size: int) -> Iterator[str]:
    """Yield the first column of ``sql`` through a named cursor, ``batch_size`` rows at a time."""
    for row in _stream_rows(sql, params, batch_size=batch_size):
        yield row[0]


def _stream_rows(sql: str, params: list[Any], *, batch_size: int) -> Iterator[tuple[Any, ...]]:
    """Yield the rows of ``sql`` through a named cursor, ``batch_size`` rows at a time."""
    with transaction.atomic():
        connection.ensure_connection()
        with connection.cursor() as plain:
            # Shortest round-trip float output, whatever the server or role default says.
            plain.execute("SET LOCAL extra_float_digits = 1")
        raw = connection.connection
        with raw.cursor(name=f"stepwise_export_{next(_cursor_numbers)}") as cursor:
            cursor.itersize = batch_size
            cursor.execute(sql, params)
            yield from cursor


def iter_prm800k_lines(
    *,
    generation: int | None = None,
    labeler: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_qc: bool = True,
    include_screening: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[str]:
    """Every matching labeling as one PRM800K JSON line (no trailing newline), oldest id first.

    ``labeler`` is the exported id (PRM800K id or pseudonym) or a username; ``since``
    is inclusive and ``until`` exclusive, naive datetimes meaning UTC. For an imported PRM800K
    line the output equals the input as JSON, key order included.
    """
    sql, params = prm800k_query(
        ExportFilter(
            generation=generation,
            labeler=labeler,
            since=since,
            until=until,
            include_qc=include_qc,
            include_screening=include_screening,
        )
    )
    yield from _stream_lines(sql, params, batch_size=batch_size)


# --- stepwise supervision ---------------------------------------------------------------------

EXCLUDED_BY_DEFAULT = (Labeling.FinishReason.GIVE_UP, Labeling.FinishReason.BAD_PROBLEM)


def stepwise_finish_reasons(*, include_unfinished: bool) -> tuple[str, ...] | None:
    """The finish reasons the stepwise export keeps (None: all of them)."""
    if include_unfinished:
        return None
    return tuple(str(r) for r in Labeling.FinishReason if r not in EXCLUDED_BY_DEFAULT)


def _is_good(rating: int, *, neutral_is_positive: bool) -> bool:
    return rating > 0 or (rating == 0 and neutral_is_positive)


def stepwise_records(
    line: dict[str, Any],
    *,
    neutral_is_positive: bool = True,
    include_alternatives: bool = True,
    labeling_id: int | None = None,
) -> list[dict[str, Any]]:
    """Turn one PRM800K line into stepwise-supervision records (pure; see iter_stepwise_lines).

    With ``labeling_id`` every record starts with an ``id``: ``<labeling id>-path`` for the
    labeler's path, ``<labeling id>-s<step>c<completion>`` (0-based) for an alternative's branch.
    """
    prompt = line["question"]["problem"]
    prefix: list[str] = []
    prefix_labels: list[bool] = []
    branches: list[dict[str, Any]] = []
    branch_ids: list[str] = []
    for step_index, step in enumerate(line["label"]["steps"]):
        completions = step["completions"] or []
        chosen = step["chosen_completion"]
        human = step["human_completion"]
        if chosen is not None and 0 <= chosen < len(completions):
            followed: dict[str, Any] | None = completions[chosen]
        elif chosen is None and human is not None:
            followed = human
        elif chosen is None and completions:
            # Phase 2 stop: completion 0 is the solution's own (erroneous) step.
            followed = completions[0]
        else:
            followed = None
        if include_alternatives:
            for completion_index, completion in enumerate(completions):
                if completion is followed or completion["rating"] is None:
                    continue
                branch_ids.append(f"s{step_index}c{completion_index}")
                branches.append(
                    {
                        "prompt": prompt,
                        "completions": [*prefix, completion["text"]],
                        "labels": [
                            *prefix_labels,
                            _is_good(completion["rating"], neutral_is_positive=neutral_is_positive),
                        ],
                    }
                )
        # An unrated step (a human completion, a give-up's last step) cannot be labeled: the
        # trajectory stops before it.
        if followed is None or followed["rating"] is None:
            break
        prefix.append(followed["text"])
        good = _is_good(followed["rating"], neutral_is_positive=neutral_is_positive)
        prefix_labels.append(good)
        if not good:
            break
    records = []
    ids = []
    if prefix:
        records.append({"prompt": prompt, "completions": prefix, "labels": prefix_labels})
        ids.append("path")
    records += branches
    ids += branch_ids
    if labeling_id is None:
        return records
    return [{"id": f"{labeling_id}-{suffix}", **r} for suffix, r in zip(ids, records, strict=True)]


def iter_stepwise_lines(
    *,
    generation: int | None = None,
    labeler: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_qc: bool = True,
    include_screening: bool = True,
    neutral_is_positive: bool = True,
    include_alternatives: bool = True,
    include_unfinished: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[str]:
    """Stepwise-supervision JSON lines ``{"id", "prompt", "completions", "labels"}`` as TRL
    reads them (``id`` as in stepwise_records: the labeling's id and which record of it).

    - One record per labeling, not per solution: when several labelers labeled a solution, each
      labeling gives its own record(s), so disagreement stays visible to the trainer (merging
      would need a policy the paper does not give). Filters are those of iter_prm800k_lines.
    - ``completions`` follows the labeler's path: the chosen completion of each step (a human
      completion when none was chosen; for a phase 2 stop, the solution's own step). ``labels``
      runs up to and including the first negative step, as in the paper's PRM training. Neutral
      is positive unless ``neutral_is_positive`` is False, in which case it ends the record too.
      An unrated step ends the record before it.
    - Alternatives: every other rated completion offered at a step on that path (phase 2's
      alternatives after the first error, phase 1's candidates) becomes an extra branch, its
      prefix (the path before the step) plus the alternative, labeled by its own rating.
    - Labelings that gave up or reported a bad problem are left out unless
      ``include_unfinished``.
    """
    finish_reasons = stepwise_finish_reasons(include_unfinished=include_unfinished)
    sql, params = prm800k_query(
        ExportFilter(
            generation=generation,
            labeler=labeler,
            since=since,
            until=until,
            include_qc=include_qc,
            include_screening=include_screening,
            finish_reasons=finish_reasons,
        ),
        with_id=True,
    )
    for labeling_id, line in _stream_rows(sql, params, batch_size=batch_size):
        for record in stepwise_records(
            json.loads(line),
            neutral_is_positive=neutral_is_positive,
            include_alternatives=include_alternatives,
            labeling_id=labeling_id,
        ):
            yield json.dumps(record, ensure_ascii=False)
