"""``manage.py import_prm800k FILE``: raw PRM800K lines, phase 1 and phase 2."""

from labeling.imports import import_prm800k
from labeling.imports.cli import ImportCommand


class Command(ImportCommand):
    help = "Import raw PRM800K JSONL: problems, solutions, labelers, generations, labelings."
    importer = staticmethod(import_prm800k)
