"""``manage.py import_solutions FILE``: candidate solutions (JSONL or a JSON array)."""

from labeling.imports import import_solutions
from labeling.imports.cli import ImportCommand


class Command(ImportCommand):
    help = "Import candidate solutions for the pool; they are graded on import."
    importer = staticmethod(import_solutions)
