"""``manage.py export_stepwise [--output FILE|FOLDER]``: stepwise-supervision JSONL for PRM trainers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from labeling.exports import iter_stepwise_lines, stepwise_finish_reasons
from labeling.management.commands.export_prm800k import (
    add_filter_arguments,
    filters_from_options,
    output_path,
    write_lines,
)


class Command(BaseCommand):
    help = (
        "Export labelings as stepwise supervision ({id, prompt, completions, labels} per line), "
        "labels up to and including the first negative step."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_filter_arguments(parser)
        parser.add_argument(
            "--neutral-as-negative",
            action="store_true",
            help="Count neutral (0) steps as negative (default: positive).",
        )
        parser.add_argument(
            "--no-alternatives",
            action="store_true",
            help="Only the labeler's path, no branches for alternative completions.",
        )
        parser.add_argument(
            "--include-unfinished",
            action="store_true",
            help="Keep labelings that gave up or reported a bad problem.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        filters = filters_from_options(options)
        progress = not options["no_progress"]
        finish_reasons = stepwise_finish_reasons(include_unfinished=options["include_unfinished"])
        output = output_path(options["output"], "stepwise", filters, finish_reasons=finish_reasons)
        written = write_lines(
            iter_stepwise_lines(
                **filters,
                neutral_is_positive=not options["neutral_as_negative"],
                include_alternatives=not options["no_alternatives"],
                include_unfinished=options["include_unfinished"],
            ),
            output=output,
            # A labeling gives one or more records: the bar counts records, without a total.
            total=None,
            progress=progress,
            unit="record",
        )
        self.stdout.write(f"wrote {written} records to {output}")
