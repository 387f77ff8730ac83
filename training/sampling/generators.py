"""Configured generators: resolving one for a run (local model path, no secrets), the console's
list, and the backend a run samples with."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from training.generator import (
    Backend,
    FewShotPrompt,
    build_backend,
)
from training.models import SamplingRun
from training.sampling.common import SECRET_KEYS, SamplingError
from training.services.base_models import base_model_path


def generator_configs() -> dict[str, dict[str, Any]]:
    """Configured generators by name (settings.STEPWISE_GENERATORS)."""
    return {name: dict(config) for name, config in settings.STEPWISE_GENERATORS.items()}


def default_generator() -> str:
    return settings.STEPWISE_GENERATOR_DEFAULT


def _local_model_path(model: str) -> Path | None:
    """A local model's directory: a registered base model, a path, or a STEPWISE_MODEL_DIR entry."""
    for candidate in (
        Path(base_model_path(model)),
        Path(settings.STEPWISE_MODEL_DIR) / model,
    ):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    return None


def generator_resolve(name: str) -> dict[str, Any]:
    """The generator's config as a run stores it: local model path resolved, secrets left out.

    Raises ValidationError on the `generator` field when it is unknown or its model is missing.
    """
    configs = generator_configs()
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise ValidationError(
            {"generator": [f"No generator named {name!r} (configured: {known})."]}
        )
    config = {k: v for k, v in configs[name].items() if k not in SECRET_KEYS}
    backend = config.get("backend")
    if backend == "local":
        model = str(config.get("model") or "")
        path = _local_model_path(model) if model else None
        if path is None:
            raise ValidationError(
                {
                    "generator": [
                        f"Generator {name}: model {model!r} is not a registered base model, a "
                        f"model directory, nor in {settings.STEPWISE_MODEL_DIR} "
                        "(python manage.py prepare_models puts SmolLM2 there)."
                    ]
                }
            )
        config["model_path"] = str(path)
    elif backend == "openai":
        missing = [key for key in ("base_url", "model") if not config.get(key)]
        if missing:
            raise ValidationError(
                {"generator": [f"Generator {name}: set {' and '.join(missing)} in its config."]}
            )
    else:
        raise ValidationError(
            {"generator": [f"Generator {name}: backend must be local or openai, got {backend!r}."]}
        )
    return config


def generator_list() -> list[dict[str, Any]]:
    """What the console offers: each generator, its backend and model, and whether it is usable."""
    default = default_generator()
    rows = []
    for name, config in sorted(generator_configs().items()):
        row: dict[str, Any] = {
            "name": name,
            "backend": config.get("backend", ""),
            "model": str(config.get("model", "")),
            "base_url": config.get("base_url", ""),
            "is_default": name == default,
            "available": True,
            "problem": "",
        }
        try:
            generator_resolve(name)
        except ValidationError as exc:
            row["available"], row["problem"] = False, exc.message_dict["generator"][0]
        rows.append(row)
    return rows


def _api_key(name: str, config: dict[str, Any]) -> str | None:
    """The server's key: `api_key` in this machine's settings, or the env var `api_key_env`."""
    current = generator_configs().get(name, {})
    if current.get("api_key"):
        return str(current["api_key"])
    variable = current.get("api_key_env") or config.get("api_key_env")
    if variable:
        key = os.environ.get(variable)
        if not key:
            raise SamplingError(f"generator {name}: environment variable {variable} is not set")
        return key
    return None


def backend_for_run(run: SamplingRun) -> Backend:
    """The run's backend, built from its stored config (plus this machine's secret, if any)."""
    config = dict(run.params["generator_config"])
    prompt = FewShotPrompt.from_dict(run.params["prompt"])
    if config["backend"] == "local":
        config["model"] = config["model_path"]
    else:
        config["api_key"] = _api_key(run.generator, config)
    return build_backend(run.generator, config, prompt)
