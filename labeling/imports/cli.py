"""The management commands' shared shape: FILE argument, progress bar, non-zero exit on error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.imports.common import ImportLineError, ImportResult


class ImportCommand(BaseCommand):
    importer: Callable[..., ImportResult]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="File to import.")
        parser.add_argument(
            "--batch-size", type=int, default=2000, help="Lines validated and written at a time."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def import_options(self, options: dict) -> dict:
        return {}

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            result = type(self).importer(
                path,
                progress=not options["no_progress"],
                batch_size=options["batch_size"],
                **self.import_options(options),
            )
        except ImportLineError as error:
            raise CommandError(f"{path}: {error} (nothing was imported)") from error
        self.stdout.write(self.style.SUCCESS(f"{path.name}: {result.summary()}"))
