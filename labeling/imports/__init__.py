"""Imports: MATH problems, candidate solutions and raw PRM800K lines.

Each import reads its file as a stream, validates every line (errors name the line and the
field path), writes in large batches inside one transaction and skips what already exists.
"""

from labeling.imports.common import ImportLineError, ImportResult, solution_fingerprint
from labeling.imports.prm800k import import_prm800k
from labeling.imports.problems import import_problems
from labeling.imports.solutions import import_solutions

IMPORTERS = {
    "problems": import_problems,
    "solutions": import_solutions,
    "prm800k": import_prm800k,
}

__all__ = [
    "IMPORTERS",
    "ImportLineError",
    "ImportResult",
    "import_problems",
    "import_prm800k",
    "import_solutions",
    "solution_fingerprint",
]
