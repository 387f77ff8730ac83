"""The resume state of an unfinished training run, so a lost attempt continues where it stopped.

It is not the final checkpoint (that is `model.save_checkpoint`): it holds what training needs to
go on exactly as if it had never stopped, written every `resume_every_steps` optimizer steps:

* the trainable parameters (frozen ones are reloaded from the base model, unchanged by training),
* the optimizer and LR scheduler state, the optimizer step count,
* the data position: epoch and batch index within this process's share of that epoch (the batch
  order is a function of the seed, `data.length_grouped_batches`, so the position is enough),
* the random generators (torch CPU and CUDA, Python's), so dropout draws the same masks,
* the running totals behind the metrics (tokens, loss sums, seconds).

States are only written at optimizer-step boundaries, so no half-accumulated gradient is lost.
One file, `resume_state.pt`, written to a temp file beside it, fsynced and renamed into place: a
reader sees the previous state or the new one. A state records a fingerprint of the run (config
and data); a state from another run (other data, other hyperparameters, other world size) is
never resumed: training starts over and says why.

Several processes (DDP): their parameters and optimizer states are identical after every step, so
the main process alone writes; every process reads the same file on restart (the directory must
be shared storage when the processes are on several machines).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

STATE_NAME = "resume_state.pt"
FORMAT_VERSION = 1

# Config fields that do not change the training trajectory: a state stays valid across them.
NOT_IN_FINGERPRINT = frozenset(
    {"output_dir", "overwrite", "log_every", "device", "resume_dir", "resume_every_steps"}
)


@dataclass
class Position:
    """Where training stands: after `update` optimizer steps and `batch_index` batches."""

    update: int = 0
    batch_index: int = 0  # batches this process has trained on, over all epochs
    epoch: int = 0
    batch_in_epoch: int = 0  # the next batch of `epoch` in this process's share of it
    tokens: int = 0
    padded_tokens: int = 0
    labeled_steps: int = 0
    loss_sum: float = 0.0
    loss_count: float = 0  # a sum reduced over processes in float64
    last_loss: float = float("nan")
    seconds: float = 0.0  # training time spent by earlier attempts


def run_fingerprint(config: Any, examples: Sequence[Any], *, world_size: int) -> dict[str, Any]:
    """What a state must match to be resumed: the config, the examples, the number of processes."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(array("q", example.input_ids).tobytes())
        digest.update(array("q", example.label_positions).tobytes())
        digest.update(array("d", [p for target in example.targets for p in target]).tobytes())
        digest.update(array("d", [example.weight]).tobytes())
        digest.update(b"\0")  # example boundary
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_IN_FINGERPRINT}
    return {
        "config": settings,
        "data": f"{len(examples)}:{digest.hexdigest()}",
        "world_size": world_size,
    }


def differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Names of what differs between two fingerprints (config fields by name)."""
    out = []
    saved_config, current_config = saved.get("config", {}), current.get("config", {})
    for key in sorted(set(saved_config) | set(current_config)):
        if saved_config.get(key, "<absent>") != current_config.get(key, "<absent>"):
            out.append(key)
    out += [key for key in ("data", "world_size") if saved.get(key) != current.get(key)]
    return out


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().to("cpu", copy=True)
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(tensors):
        missing, extra = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
        raise ValueError(
            f"resume state does not fit the model: missing {missing[:3]}, extra {extra[:3]}"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name])


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_state(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write `state` atomically as `<directory>/resume_state.pt` (temp file, fsync, rename)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / STATE_NAME
    # Unique per process: an attempt presumed dead but still running cannot collide with its
    # replacement mid-write; whichever renames last wins, and both are states of the same run.
    tmp = folder / f".{STATE_NAME}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return target


def read_state(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The state in `directory`, or None when there is none. Raises ValueError when unreadable."""
    path = Path(directory) / STATE_NAME
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{path}: unreadable resume state ({exc})") from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a resume state of format {FORMAT_VERSION}")
    return state


class Resumer:
    """Restores and periodically saves a run's resume state; does nothing without a directory."""

    def __init__(
        self,
        directory: str | None,
        *,
        every_steps: int,
        fingerprint: dict[str, Any],
        is_main_process: bool = True,
        report: Callable[[float, str], None] | None = None,
    ) -> None:
        if directory is not None and every_steps < 1:
            raise ValueError("resume_every_steps must be >= 1")
        self.directory = directory
        self.every_steps = every_steps
        self.fingerprint = fingerprint
        self.is_main_process = is_main_process
        self.report = report or (lambda fraction, message: None)

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
    ) -> Position:
        """Load the saved state into model, optimizer, scheduler and RNGs; Position() if none.

        Call before the model and optimizer are wrapped for several processes.
        """
        if self.directory is None:
            return Position()
        try:
            state = read_state(self.directory)
        except ValueError as exc:
            self.report(0.0, f"{exc}; starting from step 0")
            return Position()
        if state is None:
            return Position()
        changed = differences(state["fingerprint"], self.fingerprint)
        if changed:
            self.report(
                0.0,
                f"resume state in {self.directory} is from another run (differs in "
                f"{', '.join(changed)}); starting from step 0",
            )
            return Position()
        load_trainable_state(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        position = Position(**state["position"])
        self.report(
            0.0,
            f"resumed from step {position.update} (epoch {position.epoch}, batch "
            f"{position.batch_in_epoch}) of the state in {self.directory}",
        )
        return position

    def due(self, update: int) -> bool:
        return self.directory is not None and update % self.every_steps == 0

    def save(
        self,
        position: Position,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
    ) -> None:
        """Write the state after `position.update` steps (main process only). `model` unwrapped."""
        if self.directory is None or not self.is_main_process:
            return
        write_state(
            self.directory,
            {
                "format_version": FORMAT_VERSION,
                "fingerprint": self.fingerprint,
                "position": dataclasses.asdict(position),
                "model": trainable_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
            },
        )
