"""Train a reward model on the labelings in the database.

python manage.py train_prm --base-model NAME_OR_PATH [--name NAME] [--objective prm|orm]
    [--epochs N] [--backbone-layers N] [--train-layers K] [--activate] [--async]
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from training import services
from training.management.commands._progress import ProgressBar


class Command(BaseCommand):
    help = "Train a PRM (or ORM) version from the labelings in the database."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--base-model",
            required=True,
            help="A registered base model's name (see the admin) or a local HF model directory.",
        )
        parser.add_argument("--name", help="Version name (default: <objective>-<timestamp>).")
        parser.add_argument("--objective", choices=["prm", "orm"], default="prm")
        parser.add_argument("--epochs", type=float)
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--max-length", type=int)
        parser.add_argument("--batch-tokens", type=int)
        parser.add_argument(
            "--backbone-layers", type=int, help="Keep only the first N layers (0: all)."
        )
        parser.add_argument(
            "--train-layers", type=int, help="Train only the top K layers and the head (0: all)."
        )
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Make it active on success if held-out metrics do not regress.",
        )
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="Queue it on the gpu queue instead of training in this process.",
        )

    def handle(self, *args, **options) -> None:
        name = options["name"] or f"{options['objective']}-{timezone.now():%Y%m%d-%H%M%S}"
        hyper = {
            key: options[key]
            for key in (
                "epochs",
                "learning_rate",
                "max_length",
                "batch_tokens",
                "backbone_layers",
                "train_layers",
            )
            if options[key] is not None
        }
        try:
            with transaction.atomic():
                version = services.prm_version_create(
                    name=name,
                    base_model=options["base_model"],
                    kind=options["objective"],
                    hyperparameters=hyper,
                )
                run = services.training_run_start(
                    prm_version_id=version.id,
                    activate=options["activate"],
                    enqueue=options["run_async"],
                )
        except ValidationError as exc:
            raise CommandError(json.dumps(exc.message_dict)) from exc
        except services.TrainingError as exc:
            raise CommandError(str(exc)) from exc
        if options["run_async"]:
            self.stdout.write(f"queued training run {run.id} of {version.name}")
            return
        bar = ProgressBar(f"train {version.name}", disable=options["verbosity"] == 0)
        try:
            run = services.training_run_execute(run_id=run.id, echo=bar)
        except Exception as exc:
            raise CommandError(f"training failed: {exc}") from exc
        finally:
            bar.close()
        version.refresh_from_db()
        self.stdout.write(f"{version.name}: {version.state}, checkpoint {version.checkpoint_path}")
        metrics = {k: v for k, v in version.metrics.items() if not isinstance(v, dict)}
        self.stdout.write(json.dumps(metrics, indent=2, sort_keys=True))
        if run is not None and options["activate"]:
            self.stdout.write(run.log.strip().splitlines()[-1])
