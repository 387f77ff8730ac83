"""The position trained is the position read: the collator and the scorer agree token for token."""

from __future__ import annotations

import pytest
import torch

from training.prm.data import STEP_SEPARATOR, LabeledSolution, build_examples, collate
from training.prm.model import load_checkpoint
from training.prm.score import RewardModelScorer
from training.prm.synthetic import make_world

MAX_LENGTH = 64  # short enough that the longer synthetic solutions are truncated


@pytest.fixture(scope="module")
def scorer(tiny_checkpoint) -> RewardModelScorer:
    model, tokenizer, meta = load_checkpoint(tiny_checkpoint)
    # Perturb the head so that different positions give clearly different probabilities.
    with torch.no_grad():
        model.head.weight.mul_(3)
    return RewardModelScorer(model, tokenizer, max_length=MAX_LENGTH, device="cpu")


def _solutions() -> list[LabeledSolution]:
    world = make_world(6, 3, seed=5)
    solutions = [s for s in world if len(s.ratings) >= 2][:8]
    solutions.append(LabeledSolution("Ava has 3 coins.", ["She buys 2 more."], [1]))
    return solutions


def test_training_positions_equal_scoring_positions(scorer):
    tok = scorer.tokenizer
    sep = tok.convert_tokens_to_ids(STEP_SEPARATOR)
    solutions = _solutions()
    examples = build_examples(solutions, tok, max_length=MAX_LENGTH)
    assert len(examples) == len(solutions)
    truncated = 0
    for solution, example in zip(solutions, examples, strict=True):
        first_window = scorer.windows(solution.problem, solution.steps)[0]
        n = len(example.label_positions)
        # Same ids up to the last trained step, same separator positions.
        assert example.input_ids == first_window.input_ids[: len(example.input_ids)]
        assert example.label_positions == first_window.step_ends[:n]
        assert all(example.input_ids[p] == sep for p in example.label_positions)
        truncated += first_window.num_steps < len(solution.steps)
    assert truncated >= 2, "the test must cover truncated solutions"


def test_probabilities_at_trained_positions_are_the_scored_ones(scorer):
    """Forward the training batch, read the head at the labeled positions, compare with score()."""
    tok = scorer.tokenizer
    solutions = _solutions()
    examples = build_examples(solutions, tok, max_length=MAX_LENGTH)
    batch = collate(examples, pad_id=tok.pad_token_id)
    with torch.inference_mode():
        logits = scorer.model(batch.input_ids, batch.attention_mask, batch.rows, batch.positions)
    trained = torch.softmax(logits, -1).tolist()
    scored = scorer.step_probabilities([(s.problem, s.steps) for s in solutions])
    cursor = 0
    for example, probs in zip(examples, scored, strict=True):
        for i in range(len(example.label_positions)):
            assert trained[cursor] == pytest.approx(list(probs[i]), abs=1e-4)
            cursor += 1
    # Every step is scored, even past the truncation point (later windows).
    assert [len(p) for p in scored] == [len(s.steps) for s in solutions]
    distinct = {round(p[2], 4) for probs in scored for p in probs}
    assert len(distinct) > 5, "probabilities should differ between positions"
