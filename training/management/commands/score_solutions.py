"""Score solutions with a version and store SolutionScore rows (idempotent upsert).

python manage.py score_solutions --version NAME (--all | --pool) [--only-missing] [--async]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training import selectors, services
from training.management.commands._progress import ProgressBar
from training.models import PRMVersion


class Command(BaseCommand):
    help = "Score every solution (--all) or the unlabeled pool (--pool) with a PRM version."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # `--version NAME` names a PRM version here, replacing Django's --version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--version", required=True, help="PRM version name.")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="Every solution.")
        which.add_argument(
            "--pool", action="store_true", help="Solutions nobody has labeled or queued."
        )
        parser.add_argument(
            "--only-missing", action="store_true", help="Skip solutions it has scored already."
        )
        parser.add_argument("--async", dest="run_async", action="store_true")

    def handle(self, *args, **options) -> None:
        try:
            version = selectors.prm_version_get(name=options["version"])
        except PRMVersion.DoesNotExist as exc:
            raise CommandError(f"no version named {options['version']!r}") from exc
        ids = selectors.pool_solution_ids() if options["pool"] else None
        try:
            if options["run_async"]:
                run = services.scoring_run_start(prm_version_id=version.id, solution_ids=ids)
                self.stdout.write(f"queued scoring run {run.id}")
                return
            bar = ProgressBar(f"score with {version.name}", disable=options["verbosity"] == 0)
            try:
                count = services.score_solutions(
                    prm_version_id=version.id,
                    solution_ids=ids,
                    only_missing=options["only_missing"],
                    progress=bar,
                )
            finally:
                bar.close()
        except services.TrainingError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"scored {count} solutions with {version.name}")
