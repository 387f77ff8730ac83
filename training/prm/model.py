"""A Hugging Face backbone with a 3-way head (negative / neutral / positive) read at step ends.

A checkpoint directory holds the backbone (`save_pretrained`), the tokenizer (with the step
separator already added), `reward_head.pt` and `reward_model.json`. It is written to a sibling
temp dir and renamed into place, so readers never see half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AddedToken, AutoModel, AutoTokenizer

from .data import STEP_SEPARATOR
from .segments import PackedRow, segment_attention_for

CONFIG_NAME = "reward_model.json"
HEAD_NAME = "reward_head.pt"
FORMAT_VERSION = 1


def decoder_layers(backbone: nn.Module) -> tuple[nn.Module, str, nn.ModuleList]:
    """The backbone's stack of transformer layers, as (owner module, attribute name, the list).

    Found by shape rather than by name (`layers` in Llama/Qwen/Mistral, `h` in GPT-2, ...): the
    first ModuleList holding `num_hidden_layers` modules.
    """
    count = getattr(backbone.config, "num_hidden_layers", None)
    for name, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count and count:
            owner_name, _, attribute = name.rpartition(".")
            return backbone.get_submodule(owner_name), attribute, module
    raise ValueError(f"{type(backbone).__name__} has no list of {count} transformer layers")


class RewardModel(nn.Module):
    """Backbone + 3-way head. With `frozen_layers` = b > 0, layers [0, b) and the embeddings are
    frozen, and `forward` can start from the hidden states entering layer b (`boundary_states`,
    see `FrozenPrefixCache`) instead of from token ids.
    """

    def __init__(self, backbone: nn.Module, *, num_labels: int = 3) -> None:
        super().__init__()
        # A Hugging Face model: its config and methods are not typed for mypy.
        self.backbone: Any = backbone
        config: Any = backbone.config
        hidden = config.hidden_size
        self.head = nn.Linear(hidden, num_labels)
        self.frozen_layers = 0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        rows: torch.Tensor,
        positions: torch.Tensor,
        boundary_states: torch.Tensor | None = None,
        packed: PackedRow | None = None,
    ) -> torch.Tensor:
        """Logits [n, 3] at the (row, position) pairs only: the head never runs on other tokens.

        `boundary_states` [rows, width, hidden]: the output of the frozen layers for these rows;
        then only the layers above them run (`input_ids` is not read).
        `packed`: the rows are one flat row of several solutions laid out by `segments.pack`
        (problems once, no padding); its position ids and attention layout are used.
        """
        width = (input_ids if boundary_states is None else boundary_states).shape[1]
        extra: dict[str, Any] = {}
        layout: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if packed is not None:
            device = (input_ids if boundary_states is None else boundary_states).device
            extra["position_ids"] = packed.position_ids.to(device)
            layout = segment_attention_for(self.backbone, packed.layout.to(device))
        with self.last_mlp_only_at(rows * width + positions), layout:
            if boundary_states is None:
                hidden = self.backbone(
                    input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **extra
                ).last_hidden_state
            else:
                # The backbone's own forward, given the boundary states where it would put the
                # token embeddings and holding only the upper layers: same position ids, mask
                # and final norm.
                with self.only_layers(self.frozen_layers, None):
                    hidden = self.backbone(
                        inputs_embeds=boundary_states,
                        attention_mask=attention_mask,
                        use_cache=False,
                        **extra,
                    ).last_hidden_state
        logits: torch.Tensor = self.head(hidden[rows, positions])
        return logits.float()

    @contextmanager
    def last_mlp_only_at(self, flat_positions: torch.Tensor) -> Iterator[None]:
        """Run the top layer's MLP only at the tokens the head reads (`flat_positions` index the
        [rows * width] tokens); elsewhere it adds zero. Exact at those tokens, since nothing
        after that MLP mixes tokens (residual add, final norm, head), and a large saving: the
        head reads ~5% of the tokens, and the MLP is 3/4 of a Llama layer's weights (measured,
        one CPU thread: 1.33x faster training steps for a 2-layer Llama 64 wide; for 30-layer
        SmolLM2 it is 1/40 of the work). Off under gradient checkpointing, whose backward
        recomputes the layer after this context has ended.
        """
        layers = decoder_layers(self.backbone)[2]
        mlp = getattr(layers[-1], "mlp", None)
        checkpointing = getattr(self.backbone, "is_activation_checkpointing", False)
        if not isinstance(mlp, nn.Module) or checkpointing:
            yield
            return
        own = "forward" in mlp.__dict__  # an instance-level forward (hooks) to put back
        full = mlp.forward

        def at_read_positions(hidden: torch.Tensor) -> torch.Tensor:
            flat = hidden.reshape(-1, hidden.shape[-1])
            read = full(flat[flat_positions])
            if not isinstance(read, torch.Tensor):  # e.g. a mixture of experts' (out, router)
                whole: torch.Tensor = full(hidden)
                return whole
            out = torch.zeros_like(flat).index_copy(0, flat_positions, read.to(flat.dtype))
            return out.view_as(hidden)

        mlp.forward = at_read_positions
        try:
            yield
        finally:
            if own:
                mlp.forward = full
            else:
                del mlp.forward

    @contextmanager
    def only_layers(self, start: int, stop: int | None) -> Iterator[None]:
        """Run the backbone with layers[start:stop] only (restored afterwards)."""
        owner, attribute, layers = decoder_layers(self.backbone)
        owner._modules[attribute] = nn.ModuleList(list(layers)[start:stop])
        try:
            yield
        finally:
            owner._modules[attribute] = layers

    @torch.no_grad()
    def lower_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states leaving the frozen layers [0, frozen_layers): what layer b receives."""
        if self.frozen_layers < 1:
            raise ValueError("no frozen layers: nothing to compute below them")
        _, _, layers = decoder_layers(self.backbone)
        captured: list[torch.Tensor] = []

        def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)

        hook = layers[self.frozen_layers - 1].register_forward_hook(keep)
        try:
            with self.only_layers(0, self.frozen_layers):
                self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        finally:
            hook.remove()
        return captured[-1]


def freeze_lower_layers(model: RewardModel, train_layers: int | None) -> int:
    """Train only the top `train_layers` transformer layers, what follows them (the final norm)
    and the head; the embeddings and the layers below stay as pretrained.

    None or 0 leaves everything trainable (full fine-tuning). Returns the number of frozen layers.
    """
    frozen = 0
    if train_layers:
        owner, attribute, layers = decoder_layers(model.backbone)
        frozen = max(0, len(layers) - train_layers)
    if frozen == 0:  # the whole stack trains: so do the embeddings
        model.frozen_layers = 0
        model.requires_grad_(True)
        return 0
    model.backbone.requires_grad_(False)
    for layer in list(layers)[frozen:]:
        layer.requires_grad_(True)
    # Modules the owner registers after the layer stack run after it: the final norm.
    names = list(owner._modules)
    for name in names[names.index(attribute) + 1 :]:
        owner.get_submodule(name).requires_grad_(True)
    model.head.requires_grad_(True)
    model.frozen_layers = frozen
    return frozen


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


class FrozenPrefixCache:
    """The frozen layers' output for every training example, computed once before training.

    Frozen weights never change, so these states are the same in every epoch; training then runs
    only the upper layers on them. Rows are stored unpadded (each example its own [length,
    hidden] tensor, on the CPU) and padded again per batch, since batches change every epoch.
    Padding sits to the right and attention is causal, so a real token never sees it.
    """

    def __init__(
        self, states: list[torch.Tensor], *, seconds: float = 0.0, share: float = 0.0
    ) -> None:
        self.states = states
        self.seconds = seconds  # how long computing them took
        self.share = share  # the part of the run's progress bar they took

    @property
    def nbytes(self) -> int:
        return sum(s.numel() * s.element_size() for s in self.states)

    @classmethod
    def build(
        cls,
        model: RewardModel,
        inputs: Sequence[Sequence[int]],
        *,
        pad_id: int,
        device: torch.device,
        bf16: bool,
        batch_tokens: int,
        progress: Callable[[int, int], None] | None = None,
        share: float = 0.0,
    ) -> FrozenPrefixCache:
        """`progress(done, total)` is called about 20 times over the batches."""
        from .data import length_grouped_batches

        started = time.perf_counter()
        states: list[torch.Tensor | None] = [None] * len(inputs)
        lengths = [len(ids) for ids in inputs]
        batches = length_grouped_batches(lengths, batch_tokens=batch_tokens, seed=None)
        every = max(1, len(batches) // 20)
        was_training = model.training
        model.eval()  # dropout off: the cached states are what the frozen layers compute
        try:
            for number, batch in enumerate(batches, 1):
                ids = torch.full((len(batch.indices), batch.width), pad_id, dtype=torch.long)
                for row, index in enumerate(batch.indices):
                    ids[row, : lengths[index]] = torch.tensor(inputs[index])
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    hidden = model.lower_states(ids.to(device))
                hidden = hidden.float().cpu()
                for row, index in enumerate(batch.indices):
                    states[index] = hidden[row, : lengths[index]].clone()
                if progress and (number % every == 0 or number == len(batches)):
                    progress(number, len(batches))
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - started
        return cls([s for s in states if s is not None], seconds=seconds, share=share)

    def batch(self, indices: Sequence[int], width: int) -> torch.Tensor:
        """[len(indices), width, hidden], zero-padded to the right (as `data.collate` pads ids)."""
        first = self.states[indices[0]]
        out = torch.zeros((len(indices), width, first.shape[-1]), dtype=first.dtype)
        for row, index in enumerate(indices):
            state = self.states[index]
            out[row, : state.shape[0]] = state
        return out

    def packed(self, indices: Sequence[int], packed: PackedRow) -> torch.Tensor:
        """[1, tokens, hidden] laid out as `packed` (segments.pack) lays out these examples; a
        shared problem's states are taken from its last solution (causal: all hold the same)."""
        first = self.states[indices[0]]
        out = torch.zeros((packed.computed_tokens, first.shape[-1]), dtype=first.dtype)
        for index, where in zip(indices, packed.flat_index, strict=True):
            out[torch.tensor(where)] = self.states[index]
        return out[None]


@torch.no_grad()
def split_matches_full(model: RewardModel, *, length: int = 12, tolerance: float = 1e-4) -> bool:
    """Is "frozen layers, then the rest from their output" the same function as one forward?

    True for Llama-style models. Backbones that transform `inputs_embeds` inside their forward
    (GPT-2 adds position embeddings, Gemma scales by sqrt(hidden)) would give other numbers:
    for those the cache is not used and the frozen layers run in every step instead.
    """
    if model.frozen_layers < 1:
        return False
    was_training = model.training
    model.eval()
    try:
        vocab = int(model.backbone.config.vocab_size)
        device = next(model.parameters()).device
        ids = (torch.arange(length, dtype=torch.long) * 7 % (vocab - 3) + 3)[None].to(device)
        rows = torch.zeros(length, dtype=torch.long, device=device)
        positions = torch.arange(length, device=device)
        full = model(ids, None, rows, positions)
        split = model(ids, None, rows, positions, boundary_states=model.lower_states(ids))
        scale = full.abs().max().clamp_min(1e-6)
        return bool(((full - split).abs().max() / scale) < tolerance)
    finally:
        model.train(was_training)


@torch.no_grad()
def packing_matches_plain(model: RewardModel, *, tolerance: float = 1e-4) -> bool:
    """Does a packed batch (segments.py: a shared problem, no padding) give this model's plain
    logits? True for models whose attention goes through transformers' attention interface and
    whose positions come from `position_ids`; a backbone that does otherwise keeps padded rows.
    """
    from .segments import pack

    was_training = model.training
    model.eval()
    try:
        vocab = int(model.backbone.config.vocab_size)
        device = next(model.parameters()).device
        ids = [[(i * 7 + 3 * s) % (vocab - 3) + 3 for i in range(n)] for s, n in ((1, 9), (2, 6))]
        ids[1][:4] = ids[0][:4]  # a shared problem of 4 tokens
        rows = torch.tensor([0] * 9 + [1] * 6, device=device)
        positions = torch.tensor([*range(9), *range(6)], device=device)
        padded = torch.tensor([ids[0], ids[1] + [0] * 3], device=device)
        plain = model(padded, None, rows, positions)
        packed = pack(ids, [4, 4])
        flat = torch.tensor([i for where in packed.flat_index for i in where], device=device)
        try:
            fast = model(packed.input_ids.to(device), None, flat * 0, flat, packed=packed)
        except (RuntimeError, TypeError, ValueError, KeyError):
            return False
        scale = plain.abs().max().clamp_min(1e-6)
        return bool(((plain - fast).abs().max() / scale) < tolerance)
    finally:
        model.train(was_training)


def load_tokenizer(path: str) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if STEP_SEPARATOR not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(STEP_SEPARATOR, special=True, normalized=False)])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or STEP_SEPARATOR
    return tokenizer


def new_reward_model(
    base_model: str, *, seed: int = 0, keep_layers: int | None = None
) -> tuple[RewardModel, Any]:
    """Backbone from a local directory, separator token added, fresh small-init head.

    `keep_layers`: keep only the first N transformer layers (see `keep_lower_layers`).
    """
    if not Path(base_model).is_dir():
        raise FileNotFoundError(f"base model {base_model!r} is not a local directory")
    tokenizer = load_tokenizer(base_model)
    backbone = AutoModel.from_pretrained(base_model, local_files_only=True, dtype=torch.float32)
    if keep_layers:
        keep_lower_layers(backbone, keep_layers)
    if backbone.get_input_embeddings().num_embeddings < len(tokenizer):
        backbone.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    model = RewardModel(backbone)
    with torch.no_grad():
        std = backbone.config.hidden_size**-0.5
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=generator) * std)
        model.head.bias.zero_()
    return model, tokenizer


def keep_lower_layers(backbone: nn.Module, count: int) -> int:
    """Drop every transformer layer above the first `count`; returns how many remain.

    The backbone's config says so too, so a checkpoint saved from it is a shallower model of the
    same family that loads as any other. Why: a step's correctness is read best from mid-depth
    features (a linear probe on SmolLM2's separators peaks at layers 16-22 of 30, BENCHMARKS.md),
    and every dropped layer is time saved in training and in every later scoring pass.
    """
    owner, attribute, layers = decoder_layers(backbone)
    if count >= len(layers):
        return len(layers)
    if count < 1:
        raise ValueError("keep at least one layer")
    owner._modules[attribute] = nn.ModuleList(list(layers)[:count])
    config: Any = backbone.config
    config.num_hidden_layers = count
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:count]
    return count


def save_checkpoint(
    model: RewardModel, tokenizer: Any, path: str, *, meta: dict[str, Any], overwrite: bool = True
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
) -> tuple[RewardModel, Any, dict[str, Any]]:
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
