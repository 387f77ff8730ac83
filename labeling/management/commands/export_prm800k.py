"""``manage.py export_prm800k [--output FILE|FOLDER]``: labelings as PRM800K JSONL, streamed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.exports import ExportFilter, count_labelings, export_filename, iter_prm800k_lines


def _moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"not an ISO date or datetime: {value!r}") from error


def add_filter_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        default=".",
        help="File to write (JSONL), or a folder to write into under a name that says what the "
        "file holds (round, labeler, first and last day). Default: the current folder.",
    )
    parser.add_argument("--generation", type=int, help="Only this generation number.")
    parser.add_argument("--labeler", help="Only this labeler (PRM800K id or username).")
    parser.add_argument("--since", help="Labelings finished at or after (ISO; naive = UTC).")
    parser.add_argument("--until", help="Labelings finished before (ISO; naive = UTC).")
    parser.add_argument("--exclude-qc", action="store_true", help="Leave out QC items.")
    parser.add_argument(
        "--exclude-screening", action="store_true", help="Leave out screening questions."
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")


def filters_from_options(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "generation": options["generation"],
        "labeler": options["labeler"],
        "since": _moment(options["since"]) if options["since"] else None,
        "until": _moment(options["until"]) if options["until"] else None,
        "include_qc": not options["exclude_qc"],
        "include_screening": not options["exclude_screening"],
    }


def output_path(output: str, kind: str, filters: dict[str, Any], **extra: Any) -> str:
    """``output`` itself, or inside a folder the file named after what it holds."""
    if not Path(output).is_dir():
        return output
    return str(Path(output) / export_filename(kind, ExportFilter(**filters, **extra)))


def write_lines(
    lines: Iterator[str], *, output: str, total: int | None, progress: bool, unit: str
) -> int:
    """Write to a temporary file beside ``output`` and rename it into place at the end, so a
    failed export never leaves a truncated file under the requested name."""
    target = Path(output)
    if not target.parent.is_dir():
        raise CommandError(f"--output: folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    written = 0
    try:
        with (
            partial.open("w", encoding="utf-8") as out,
            tqdm(total=total, unit=unit, disable=not progress) as bar,
        ):
            for line in lines:
                out.write(line)
                out.write("\n")
                written += 1
                bar.update(1)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written


class Command(BaseCommand):
    help = (
        "Export labelings as PRM800K JSONL (streamed; filters by generation, labeler, dates, QC)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_filter_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        filters = filters_from_options(options)
        progress = not options["no_progress"]
        total = count_labelings(ExportFilter(**filters)) if progress else None
        output = output_path(options["output"], "prm800k", filters)
        written = write_lines(
            iter_prm800k_lines(**filters),
            output=output,
            total=total,
            progress=progress,
            unit="line",
        )
        self.stdout.write(f"wrote {written} lines to {output}")
