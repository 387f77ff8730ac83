"""Training options for real backbones: which weights move, the frozen-layer cache, encoders refused."""

from __future__ import annotations

import shutil

import pytest
import torch

from training.prm.backbones import BackboneError, check_backbone, check_causal
from training.prm.config import TrainConfig
from training.prm.data import build_examples, collate, split_by_problem
from training.prm.model import (
    FrozenPrefixCache,
    freeze_lower_layers,
    load_checkpoint,
    new_reward_model,
    split_matches_full,
)
from training.prm.synthetic import make_world
from training.prm.train import soft_cross_entropy, train_reward_model


@pytest.fixture(scope="module")
def solutions():
    return make_world(24, 3, seed=3)


def _train(backbone, out, solutions, **options):
    config = TrainConfig(
        backbone, str(out), epochs=2, learning_rate=3e-3, max_length=256, batch_tokens=2048,
        **options,
    )  # fmt: skip
    return train_reward_model(solutions, config)


def _initial_weights(backbone: str) -> dict[str, torch.Tensor]:
    """The reward model training starts from: the trainer seeds torch with config.seed (0) first."""
    torch.manual_seed(0)
    model, _ = new_reward_model(backbone, seed=0)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _moved(before: dict, checkpoint: str) -> dict[str, bool]:
    model, _, _ = load_checkpoint(checkpoint)
    return {k: not torch.equal(before[k], v) for k, v in model.state_dict().items()}


def test_train_layers_moves_exactly_the_top_layers_the_norm_and_the_head(
    tiny_backbone, tmp_path, solutions
):
    before = _initial_weights(tiny_backbone)
    result = _train(tiny_backbone, tmp_path / "top1", solutions, train_layers=1)
    moved = _moved(before, result.checkpoint_dir)
    trained = {k for k in moved if k.startswith(("backbone.layers.1.", "backbone.norm.", "head."))}
    assert trained and all(moved[k] for k in trained), [k for k in trained if not moved[k]]
    frozen = set(moved) - trained
    assert any(k.startswith("backbone.embed_tokens") for k in frozen)
    assert any(k.startswith("backbone.layers.0.") for k in frozen)
    assert not any(moved[k] for k in frozen), [k for k in frozen if moved[k]]
    assert result.metrics["frozen_layers"] == 1
    assert result.metrics["frozen_cache_mb"] > 0  # the cached path is the one that trained


def test_full_fine_tuning_moves_everything(tiny_backbone, tmp_path, solutions):
    before = _initial_weights(tiny_backbone)
    for options in ({}, {"train_layers": 2}, {"train_layers": 9}):  # K >= depth: everything
        result = _train(tiny_backbone, tmp_path / f"full{len(options)}", solutions, **options)
        moved = _moved(before, result.checkpoint_dir)
        assert all(moved.values()), [k for k, v in moved.items() if not v]
        assert result.metrics["frozen_layers"] == 0


def test_cached_boundary_gives_the_loss_and_gradients_of_the_frozen_forward(
    tiny_backbone, solutions
):
    model, tokenizer = new_reward_model(tiny_backbone, seed=0)
    assert freeze_lower_layers(model, 1) == 1
    assert split_matches_full(model)
    examples = build_examples(solutions[:12], tokenizer, objective="prm", max_length=256)
    pad = tokenizer.pad_token_id
    cache = FrozenPrefixCache.build(
        model, [e.input_ids for e in examples], pad_id=pad, device=torch.device("cpu"),
        bf16=False, batch_tokens=600,  # other batches than the training batch below
    )  # fmt: skip
    indices = [5, 0, 7, 3]
    collated = collate([examples[i] for i in indices], pad_id=pad)

    def loss_and_grads(boundary):
        model.zero_grad(set_to_none=True)
        logits = model(collated.input_ids, None, collated.rows, collated.positions, boundary)
        loss = soft_cross_entropy(logits, collated.targets, collated.weights)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return float(loss.detach()), grads

    uncached_loss, uncached = loss_and_grads(None)
    cached_loss, cached = loss_and_grads(cache.batch(indices, collated.input_ids.shape[1]))
    assert cached_loss == pytest.approx(uncached_loss, rel=1e-5)
    assert set(cached) == set(uncached) and any(n.startswith("head.") for n in cached)
    for name, grad in uncached.items():
        torch.testing.assert_close(cached[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # Frozen weights get no gradient on either path.
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_training_with_and_without_the_cache_ends_at_the_same_weights(
    tiny_backbone, tmp_path, solutions
):
    cached = _train(tiny_backbone, tmp_path / "c", solutions, train_layers=1, frozen_bf16=False)
    plain = _train(
        tiny_backbone, tmp_path / "p", solutions, train_layers=1, frozen_cache_gb=0
    )  # the frozen layer runs in every step
    assert cached.metrics["frozen_cache_mb"] > 0 and plain.metrics["frozen_cache_mb"] == 0
    assert cached.metrics["train_loss"] == pytest.approx(plain.metrics["train_loss"], rel=1e-4)
    a, _, _ = load_checkpoint(cached.checkpoint_dir)
    b, _, _ = load_checkpoint(plain.checkpoint_dir)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-5, msg=name)


def test_a_frozen_checkpoint_is_a_full_model_the_scorer_loads(tiny_backbone, tmp_path, solutions):
    from training.prm.score import RewardModelScorer

    train, heldout = split_by_problem(solutions, held_out_fraction=0.25, seed=0)
    result = train_reward_model(
        train,
        TrainConfig(tiny_backbone, str(tmp_path / "ckpt"), train_layers=1, max_length=256),
        validation=heldout,
    )
    scorer = RewardModelScorer.from_checkpoint(result.checkpoint_dir, device="cpu")
    scores = scorer.score([(s.problem, s.steps) for s in heldout])
    assert len(scores) == len(heldout) and all(0.0 <= s.score <= 1.0 for s in scores)
    model, _, meta = load_checkpoint(result.checkpoint_dir)
    assert meta["train_config"]["train_layers"] == 1
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen at load time


def test_backbone_layers_keeps_the_first_layers_and_the_checkpoint_is_that_model(
    tmp_path, solutions
):
    from training.prm.score import RewardModelScorer
    from training.prm.synthetic import build_tiny_backbone

    three = build_tiny_backbone(str(tmp_path / "three"), hidden_size=32, num_layers=3, num_heads=2)
    before = _initial_weights(three)
    result = _train(three, tmp_path / "two", solutions, backbone_layers=2, train_layers=1)
    assert (result.metrics["layers"], result.metrics["frozen_layers"]) == (2, 1)
    model, _, _ = load_checkpoint(result.checkpoint_dir)
    assert model.backbone.config.num_hidden_layers == 2 and len(model.backbone.layers) == 2
    after = model.state_dict()
    assert not any(k.startswith("backbone.layers.2.") for k in after)
    for key, value in after.items():
        same = torch.equal(before[key], value)
        assert same == key.startswith(("backbone.embed_tokens", "backbone.layers.0.")), key
    scorer = RewardModelScorer.from_checkpoint(result.checkpoint_dir, device="cpu")
    assert len(scorer.score([(solutions[0].problem, solutions[0].steps)])[0].step_probs) > 0


def _bert_dir(tiny_backbone: str, path) -> str:
    """A tiny BERT encoder (bidirectional attention) with the tiny backbone's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone, local_files_only=True)
    config = BertConfig(
        vocab_size=len(tokenizer) + 1, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    BertModel(config).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        source = f"{tiny_backbone}/{name}"
        try:
            shutil.copy(source, path / name)
        except FileNotFoundError:
            pass
    return str(path)


def test_an_encoder_is_refused_at_training_start_and_at_registration(
    tiny_backbone, tmp_path, solutions
):
    bert = _bert_dir(tiny_backbone, tmp_path / "bert")
    with pytest.raises(BackboneError, match="not a causal"):
        _train(bert, tmp_path / "out", solutions)
    assert not (tmp_path / "out").exists()
    with pytest.raises(BackboneError, match="not a causal"):
        check_backbone(bert)
    assert check_backbone(tiny_backbone).causal


def test_causality_is_measured_not_read_from_the_config():
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel

    llama = LlamaModel(
        LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2)
    )  # fmt: skip
    assert not llama.config.architectures  # a name-based check would call it an encoder
    assert check_causal(llama)
    bert = BertModel(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=32)
    )  # fmt: skip
    assert not check_causal(bert)
    decoder = BertModel(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=32, is_decoder=True)
    )  # fmt: skip
    assert check_causal(decoder)  # BERT as a decoder masks the future: usable
    bert.train()
    check_causal(bert)
    assert bert.training  # mode restored


def test_bad_options_are_refused(tiny_backbone, tmp_path):
    with pytest.raises(ValueError, match="train_layers"):
        TrainConfig(tiny_backbone, str(tmp_path), train_layers=-1).validate()
    with pytest.raises(ValueError, match="backbone_layers"):
        TrainConfig(tiny_backbone, str(tmp_path), backbone_layers=-2).validate()
    with pytest.raises(ValueError, match="frozen_cache_gb"):
        TrainConfig(tiny_backbone, str(tmp_path), frozen_cache_gb=-1).validate()


def test_bf16_autocast_trains_over_the_cache(tiny_backbone, tmp_path, solutions):
    """The CUDA default path (bf16 autocast for the frozen pass and the trained layers), run on
    the CPU's bf16 autocast: the cache is built in bf16, kept in fp32, and training proceeds."""
    result = _train(
        tiny_backbone, tmp_path / "bf16", solutions, train_layers=1, bf16=True, frozen_bf16=True
    )
    assert result.metrics["bf16"] and result.metrics["frozen_cache_mb"] > 0
    assert torch.isfinite(torch.tensor(result.metrics["train_loss"]))
