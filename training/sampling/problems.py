"""Which problems a run samples: from a MATH-style file (imported first) or a selection."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError

from labeling.imports import import_problems
from labeling.imports.common import text_md5
from labeling.models import Problem


def problems_from_file(path: str | Path) -> list[int]:
    """Problems of a MATH-style JSONL file, in file order, imported first when they are new.

    The import is the usual one (atomic, idempotent): a bad line raises ImportLineError naming
    the line and field, and nothing is kept.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError({"problems_file": [f"{path} is not a file."]})
    import_problems(path)
    keys: list[tuple[str, str]] = []
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            record = json.loads(raw)
            if record.get("unique_id"):
                keys.append(("source_id", record["unique_id"]))
            else:
                keys.append(("md5", text_md5(record["problem"])))
    by_source = dict(
        Problem.objects.filter(source_id__in=[v for k, v in keys if k == "source_id"]).values_list(
            "source_id", "id"
        )
    )
    md5s = [v for k, v in keys if k == "md5"]
    by_md5: dict[str, int] = {}
    if md5s:
        from django.db.models.functions import MD5

        by_md5 = dict(
            Problem.objects.annotate(text_hash=MD5("text"))
            .filter(text_hash__in=md5s)
            .values_list("text_hash", "id")
        )
    ids: list[int] = []
    for kind, value in keys:
        problem_id = by_source.get(value) if kind == "source_id" else by_md5.get(value)
        if problem_id is not None and problem_id not in ids:
            ids.append(problem_id)
    return ids


def problems_select(
    *, split: str | None = None, limit: int | None = None, problem_ids: list[int] | None = None
) -> list[int]:
    """Problem ids in a stable order: the given ids (checked), else a split's, else all; the
    first `limit` of them."""
    if problem_ids is not None:
        found = set(Problem.objects.filter(id__in=problem_ids).values_list("id", flat=True))
        missing = [pid for pid in problem_ids if pid not in found]
        if missing:
            shown = ", ".join(str(pid) for pid in missing[:10])
            raise ValidationError({"problem_ids": [f"No problem with id {shown}."]})
        ids = list(dict.fromkeys(problem_ids))
        if split:
            in_split = set(
                Problem.objects.filter(id__in=ids, split=split).values_list("id", flat=True)
            )
            ids = [pid for pid in ids if pid in in_split]
    else:
        problems = Problem.objects.order_by("id")
        if split:
            problems = problems.filter(split=split)
        ids = list(
            problems.values_list("id", flat=True)[:limit]
            if limit
            else problems.values_list("id", flat=True)
        )
    if limit:
        ids = ids[:limit]
    if not ids:
        field = "split" if split else "problem_ids" if problem_ids is not None else "limit"
        where = f" in split {split!r}" if split else ""
        raise ValidationError({field: [f"No problem to sample{where}: import problems first."]})
    return ids
