"""``manage.py import_problems FILE``: MATH-style problems (JSONL)."""

from django.core.management.base import CommandParser

from labeling.imports import import_problems
from labeling.imports.cli import ImportCommand


class Command(ImportCommand):
    help = "Import MATH-style problems (problem, solution, answer, subject, level, unique_id)."
    importer = staticmethod(import_problems)

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--split", help="Split to record (default: from unique_id).")

    def import_options(self, options: dict) -> dict:
        return {"split": options["split"]}
