"""A Hugging Face backbone with a 3-way head (negative / neutral / positive) read at step ends.

A checkpoint directory holds the backbone (`save_pretrained`), the tokenizer (with the step
separator already added), `reward_head.pt` and `reward_model.json`. It is written to a sibling
temp dir and renamed into place, so readers never see half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import torch
from torch import nn
from transformers import AddedToken, AutoModel, AutoTokenizer

from .data import STEP_SEPARATOR

CONFIG_NAME = "reward_model.json"
HEAD_NAME = "reward_head.pt"
FORMAT_VERSION = 1


class RewardModel(nn.Module):
    def __init__(self, backbone: nn.Module, *, num_labels: int = 3) -> None:
        super().__init__()
        self.backbone = backbone
        hidden = backbone.config.hidden_size
        self.head = nn.Linear(hidden, num_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        rows: torch.Tensor,
        positions: torch.Tensor,
    ) -> torch.Tensor:
        """Logits [n, 3] at the (row, position) pairs only: the head never runs on other tokens."""
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        return self.head(hidden[rows, positions]).float()


def load_tokenizer(path: str):
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if STEP_SEPARATOR not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(STEP_SEPARATOR, special=True, normalized=False)])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or STEP_SEPARATOR
    return tokenizer


def new_reward_model(base_model: str, *, seed: int = 0) -> tuple[RewardModel, object]:
    """Backbone from a local directory, separator token added, fresh small-init head."""
    if not Path(base_model).is_dir():
        raise FileNotFoundError(f"base model {base_model!r} is not a local directory")
    tokenizer = load_tokenizer(base_model)
    backbone = AutoModel.from_pretrained(base_model, local_files_only=True, dtype=torch.float32)
    if backbone.get_input_embeddings().num_embeddings < len(tokenizer):
        backbone.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    model = RewardModel(backbone)
    with torch.no_grad():
        std = backbone.config.hidden_size**-0.5
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=generator) * std)
        model.head.bias.zero_()
    return model, tokenizer


def save_checkpoint(
    model: RewardModel, tokenizer, path: str, *, meta: dict, overwrite: bool = True
) -> str:
    """Write to `<path>.tmp-*`, fsync the small files, then rename into place (atomic swap)."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists and overwrite is off")
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.backbone.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        torch.save(
            {k: v.detach().cpu() for k, v in model.head.state_dict().items()}, tmp / HEAD_NAME
        )
        config = {"format_version": FORMAT_VERSION, "separator": STEP_SEPARATOR, **meta}
        with open(tmp / CONFIG_NAME, "w") as fh:
            json.dump(config, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            old = target.with_name(f"{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(target)


def is_checkpoint(path: str) -> bool:
    return (Path(path) / CONFIG_NAME).is_file() and (Path(path) / HEAD_NAME).is_file()


def load_checkpoint(
    path: str, *, device: str | torch.device = "cpu"
) -> tuple[RewardModel, object, dict]:
    if not is_checkpoint(path):
        raise FileNotFoundError(
            f"{path!r} is not a reward-model checkpoint (needs {CONFIG_NAME} and {HEAD_NAME})"
        )
    with open(Path(path) / CONFIG_NAME) as fh:
        meta = json.load(fh)
    tokenizer = load_tokenizer(path)
    backbone = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    model = RewardModel(backbone)
    head = torch.load(Path(path) / HEAD_NAME, map_location="cpu", weights_only=True)
    model.head.load_state_dict(head)
    model.to(device).eval()
    return model, tokenizer, meta
