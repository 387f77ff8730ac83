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
        encoded = scorer.encode(solution.problem, solution.steps)
        n = len(example.label_positions)
        # Same ids up to the last trained step, same separator positions.
        assert example.input_ids == encoded.input_ids[: len(example.input_ids)]
        assert example.label_positions == encoded.step_ends[:n]
        assert all(example.input_ids[p] == sep for p in example.label_positions)
        truncated += encoded.num_steps < len(solution.steps)
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
    # Exactly the steps training would see are scored; none past the truncation point.
    fitting = [scorer.encode(s.problem, s.steps).num_steps for s in solutions]
    assert [len(p) for p in scored] == fitting
    distinct = {round(p[2], 4) for probs in scored for p in probs}
    assert len(distinct) > 5, "probabilities should differ between positions"


def test_steps_past_the_context_are_flagged_not_scored_from_a_later_window(scorer):
    """A long solution scores as its fitting prefix does: no window restarts without the earlier
    steps, and the unscored steps are counted."""
    solutions = _solutions()
    long = [s for s in solutions if scorer.encode(s.problem, s.steps).num_steps < len(s.steps)]
    assert long, "the test needs solutions longer than the context"
    full = scorer.score([(s.problem, s.steps) for s in long])
    fitting = [scorer.encode(s.problem, s.steps).num_steps for s in long]
    cut = scorer.score([(s.problem, s.steps[:n]) for s, n in zip(long, fitting, strict=True)])
    for whole, prefix, solution, n in zip(full, cut, long, fitting, strict=True):
        assert whole.truncated == len(solution.steps) - n > 0
        assert prefix.truncated == 0
        assert len(whole.step_probs) == n
        assert whole.score == pytest.approx(prefix.score, abs=1e-5)
        for a, b in zip(whole.step_probs, prefix.step_probs, strict=True):
            assert a == pytest.approx(b, abs=1e-5)
    short = scorer.score([("Ava has 3 coins.", ["She buys 2 more."])])[0]
    assert short.truncated == 0 and len(short.step_probs) == 1
