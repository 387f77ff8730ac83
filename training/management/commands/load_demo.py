"""``manage.py load_demo``: the demo world (data, accounts, a round with tasks). Idempotent.

It lives in training because it also registers the default backbone and queues the demo loop;
labeling itself imports no other app.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.imports import ImportLineError
from labeling.imports.demo import ADMIN_USERNAME, load_demo
from training.demo import demo_loop_start
from training.services import base_model_register


class Command(BaseCommand):
    help = (
        "Load math500 problems, the PRM800K samples and the ProcessBench GSM8K pool; create an "
        "admin and three labelers (password: $STEPWISE_DEMO_PASSWORD or a default) and a demo "
        "round with tasks. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="Folder with the shared data files (default: settings.STEPWISE_DATA_DIR).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")
        parser.add_argument(
            "--start-loop",
            action="store_true",
            help="Also queue the demo's background work on the gpu worker (once): the default "
            "generator samples a few problems, and a first PRM trains from SmolLM2 on the "
            "imported labels. `dev.py up` passes it.",
        )

    def handle(self, *args, **options) -> None:
        data_dir = options["data_dir"] or Path(settings.STEPWISE_DATA_DIR)
        try:
            result = load_demo(data_dir=data_dir, progress=not options["no_progress"])
        except FileNotFoundError as error:
            raise CommandError(str(error)) from error
        except ImportLineError as error:
            raise CommandError(f"demo data is not valid: {error}") from error
        for name, imported in result.imports:
            self.stdout.write(f"{name}: {imported.summary()}")
        self.stdout.write(
            f"demo round: generation 0 has {result.tasks_total} tasks ({result.tasks_created} new)"
        )
        self._register_base_model()
        if options["start_loop"]:
            self._start_loop()
        self.stdout.write(self.style.SUCCESS("Demo accounts (username / password / role):"))
        for username, role in result.accounts:
            self.stdout.write(f"  {username:<8} {result.password}  ({role})")

    def _register_base_model(self) -> None:
        """SmolLM2 becomes the demo's base model when the set-up has put it on disk."""
        from training.prm.backbones import SMOLLM2_NAME, default_model_dir, is_model_dir

        path = default_model_dir(settings.STEPWISE_MODEL_DIR)
        if not is_model_dir(path):
            self.stdout.write(
                f"base model {SMOLLM2_NAME}: not on disk at {path} "
                "(python manage.py prepare_models --register puts it there)"
            )
            return
        model = base_model_register(name=SMOLLM2_NAME, path=str(path))
        self.stdout.write(f"base model {model.name}: {model.path}")

    def _start_loop(self) -> None:
        from django.contrib.auth import get_user_model

        from training.prm.backbones import SMOLLM2_NAME

        admin = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
        loop = demo_loop_start(base_model=SMOLLM2_NAME, created_by=admin)
        if loop.sampling_run is not None:
            run = loop.sampling_run
            made = "queued" if loop.sampling_created else f"found ({run.state})"
            self.stdout.write(
                f"demo generation: sampling run {run.id} {made} with {run.generator} "
                "(watch it at /console/data/)"
            )
        if loop.training_run is not None:
            self.stdout.write(
                f"demo PRM: {loop.version.name} ({loop.version.state}), training run "
                f"{loop.training_run.id} {loop.training_run.state} (watch it at /console/prm/)"
            )
        for note in loop.notes:
            self.stdout.write(f"demo loop: {note}")
