"""Evaluate a finished version on its held-out labels, optionally on a ProcessBench file.

python manage.py evaluate_prm --version NAME [--processbench FILE] [--async]
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training import selectors, services
from training.management.commands._progress import ProgressBar
from training.models import PRMVersion


class Command(BaseCommand):
    help = "Held-out step metrics and ProcessBench first-error F1 of a PRM version."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # `--version NAME` names a PRM version here, replacing Django's --version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--version", required=True, help="PRM version name.")
        parser.add_argument("--processbench", help="ProcessBench-format JSON file.")
        parser.add_argument("--async", dest="run_async", action="store_true")

    def handle(self, *args, **options) -> None:
        try:
            version = selectors.prm_version_get(name=options["version"])
        except PRMVersion.DoesNotExist as exc:
            raise CommandError(f"no version named {options['version']!r}") from exc
        try:
            if options["run_async"]:
                run = services.evaluation_run_start(
                    prm_version_id=version.id, processbench_path=options["processbench"]
                )
                self.stdout.write(f"queued evaluation run {run.id}")
                return
            bar = ProgressBar(f"evaluate {version.name}", disable=options["verbosity"] == 0)
            try:
                result = services.evaluate_prm_version(
                    prm_version_id=version.id,
                    processbench_path=options["processbench"],
                    progress=bar,
                )
            finally:
                bar.close()
        except ValidationError as exc:
            raise CommandError(json.dumps(exc.message_dict)) from exc
        except services.TrainingError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(services.json_safe(result), indent=2, sort_keys=True))
