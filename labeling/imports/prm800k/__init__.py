"""Import raw PRM800K lines (phase 1 and phase 2) into problems, solutions, labelers,
generations and labelings.

Mapping (the PRM800K exporter rebuilds each line from exactly these rows):
- ``question.problem``: Problem found by text, else created with ``reference_answer`` =
  ``ground_truth_answer`` and ``reference_solution`` = ``ground_truth_solution`` or "". When the
  stored problem differs, the line's own text is kept in ``Labeling.ground_truth_*_override``.
- Phase 2 (``question.pre_generated_steps`` present): a pre-generated Solution with those steps,
  ``final_answer`` = ``pre_generated_answer``, ``selection_score`` =
  ``pre_generated_verifier_score``; ``completions[1:]`` of a step become its StepAlternatives.
- Phase 1: a Solution (``is_pre_generated=False``) whose steps are the chosen trajectory: the
  chosen completion of each step, or the human completion, up to the first step with neither.
- Solutions are found or created by fingerprint (problem id + steps) and graded on creation.
- ``labeler``: Labeler by ``external_id`` (inactive user ``prm800k-<id>``, unusable password).
- ``generation``: Generation by number (created "finished"); null stays null (phase 1).
- One Labeling per line (``source="import"``, ``import_key`` = sha256 of the canonical line JSON,
  so re-imports skip it), one LabeledStep per ``label.steps[i]`` (position i) and one
  LabeledCompletion per completion (position j).
A null ``ground_truth_answer`` / ``ground_truth_solution`` (initial screening questions have
them) is stored as "" (on the problem, or as an override): an exporter writes "" back as null.
Step positions are 0-based (the index in ``label.steps``); alternative positions are the
completion index (1..).
"""

from __future__ import annotations

from django.db import transaction

from labeling.imports.common import (
    ImportResult,
    Source,
    batched,
    iter_json_lines,
    lock_imports,
    open_source,
    paused_gc,
    require_lines,
)
from labeling.imports.prm800k.parse import ParsedLine, parse_line
from labeling.imports.prm800k.schema import FINISH_REASONS, PRM800KLine
from labeling.imports.prm800k.writer import LABELER_USERNAME_PREFIX, SOLUTION_SOURCE, Writer

__all__ = [
    "FINISH_REASONS",
    "LABELER_USERNAME_PREFIX",
    "PRM800KLine",
    "ParsedLine",
    "SOLUTION_SOURCE",
    "import_prm800k",
    "parse_line",
]


def import_prm800k(path: Source, *, progress: bool = False, batch_size: int = 2000) -> ImportResult:
    """Import a PRM800K JSONL file atomically and idempotently (see the package docstring).

    A bad line raises ``ImportLineError`` naming its line number and field path; nothing from
    the file is kept then. Lines are validated against the declared schema (``schema.py``) and
    written in batches of ``batch_size``.
    """
    result = ImportResult(kind="prm800k")
    with open_source(path) as (handle, size), paused_gc(), transaction.atomic():
        lock_imports()
        writer = Writer(result)
        # Each line is validated as it is read, so the first bad line is the one reported.
        lines = (parse_line(n, data) for n, data in iter_json_lines(handle, size, progress))
        for parsed in batched(lines, batch_size):
            result.lines += len(parsed)
            writer.write(parsed)
        require_lines(result)
    return result
