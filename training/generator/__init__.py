"""Generators: sample candidate solutions from a model (no Django here).

Two backends: a local Hugging Face causal LM (`local`) and any server speaking the OpenAI API
(`openai`: vLLM, SGLang, TGI, llama.cpp). `build_backend` makes one from a plain config dict;
training/sampling.py resolves names and secrets from the settings, stores the results and
keeps the run's progress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.generator.base import (
    Backend,
    Completion,
    GeneratorError,
    SampleRequest,
    SamplingParams,
    sample_seed,
)
from training.generator.parse import ParsedSolution, split_solution
from training.generator.prompt import ANSWER_MARKER, FewShotPrompt

BACKENDS = ("local", "openai")

__all__ = [
    "ANSWER_MARKER",
    "BACKENDS",
    "Backend",
    "Completion",
    "FewShotPrompt",
    "GeneratorError",
    "ParsedSolution",
    "SampleRequest",
    "SamplingParams",
    "build_backend",
    "sample_seed",
    "split_solution",
]

_LOCAL_KEYS = {"model", "chat", "device", "max_batch_rows"}
_OPENAI_KEYS = {
    "base_url",
    "model",
    "api_key",
    "endpoint",
    "timeout",
    "max_retries",
    "retry_backoff",
    "max_n",
    "concurrency",
}


def build_backend(name: str, config: dict[str, Any], prompt: FewShotPrompt) -> Backend:
    """A backend from a resolved config (`model` a local path for `local`; the key in
    `api_key` for `openai`). Keys the backend does not use are ignored."""
    kind = config.get("backend")
    if kind == "local":
        options = {k: v for k, v in config.items() if k in _LOCAL_KEYS}
        path = options.pop("model", None)
        if not path:
            raise GeneratorError(f"generator {name}: give the model directory (model)")
        from training.generator.local import LocalCausalLM

        return LocalCausalLM(Path(path), prompt=prompt, name=name, **options)
    if kind == "openai":
        from training.generator.openai_compatible import OpenAICompatible

        options = {k: v for k, v in config.items() if k in _OPENAI_KEYS}
        try:
            return OpenAICompatible(prompt=prompt, name=name, **options)
        except TypeError as exc:  # a required key is missing
            raise GeneratorError(f"generator {name}: {exc}") from exc
    raise GeneratorError(
        f"generator {name}: backend must be one of {', '.join(BACKENDS)}, got {kind!r}"
    )
