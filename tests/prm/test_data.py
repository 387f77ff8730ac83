from __future__ import annotations

import pytest

from training.prm.data import (
    IGNORE_INDEX,
    STEP_SEPARATOR,
    LabeledSolution,
    build_examples,
    collate,
    encode_solution,
    length_grouped_batches,
    split_by_problem,
    training_targets,
)
from training.prm.model import load_tokenizer

NEG, NEU, POS = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def test_prm_targets_stop_at_first_negative_and_drop_unlabeled_tail():
    sol = LabeledSolution("p", ["a", "b", "c", "d", "e"], [1, None, 0, -1, 1])
    steps, targets = training_targets(sol)
    assert steps == ["a", "b", "c", "d"]
    assert targets == [POS, None, NEU, NEG]

    partial = LabeledSolution("p", ["a", "b", "c"], [1, 0])
    steps, targets = training_targets(partial)
    assert steps == ["a", "b"] and targets == [POS, NEU]

    trailing_none = LabeledSolution("p", ["a", "b", "c"], [1, None, None])
    assert training_targets(trailing_none) == (["a"], [POS])


def test_soft_targets_are_kept_as_distributions():
    sol = LabeledSolution("p", ["a", "b"], [1, 1], soft_ratings=[(0.0, 0.25, 0.75), None])
    _, targets = training_targets(sol)
    assert targets == [(0.0, 0.25, 0.75), POS]
    with pytest.raises(ValueError):
        training_targets(LabeledSolution("p", ["a"], [2]))


def test_orm_targets_label_every_step_with_the_outcome():
    sol = LabeledSolution("p", ["a", "b", "c"], [1, -1], is_correct=False)
    assert training_targets(sol, "orm") == (["a", "b", "c"], [NEG, NEG, NEG])
    assert training_targets(LabeledSolution("p", ["a"], [1]), "orm") == ([], [])


def test_encode_marks_each_step_end_with_the_separator(tiny_backbone):
    tok = load_tokenizer(tiny_backbone)
    sep = tok.convert_tokens_to_ids(STEP_SEPARATOR)
    enc = encode_solution(tok, "Ava has 3 coins.", ["She buys 2 more.", "So 5."], max_length=512)
    assert enc.num_steps == 2
    assert [enc.input_ids[i] for i in enc.step_ends] == [sep, sep]
    assert enc.input_ids.count(sep) == 2
    assert enc.step_ends[-1] == len(enc.input_ids) - 1
    assert enc.input_ids[0] == tok.bos_token_id


def test_truncation_keeps_whole_steps_only(tiny_backbone):
    tok = load_tokenizer(tiny_backbone)
    steps = ["She buys 2 more, so 3 + 2 = 5."] * 6
    full = encode_solution(tok, "Ava has 3 coins.", steps, max_length=512)
    cut = encode_solution(tok, "Ava has 3 coins.", steps, max_length=40)
    assert 0 < cut.num_steps < 6
    assert len(cut.input_ids) <= 40
    assert cut.input_ids == full.input_ids[: len(cut.input_ids)]
    assert cut.step_ends == full.step_ends[: cut.num_steps]
    # A single step longer than the budget is cut so that its separator still fits.
    one = encode_solution(tok, "Ava has 3 coins.", [" ".join(["more"] * 100)], max_length=20)
    assert one.num_steps == 1 and len(one.input_ids) == 20


def test_collate_puts_labels_on_separators_only(tiny_backbone):
    tok = load_tokenizer(tiny_backbone)
    sols = [
        LabeledSolution("Ava has 3 coins.", ["She buys 2 more.", "So 5."], [1, -1]),
        LabeledSolution("Ben has 4 cards.", ["He gives away 1."], [0], weight=2.0),
    ]
    examples = build_examples(sols, tok, max_length=512)
    batch = collate(examples, pad_id=tok.pad_token_id)
    sep = tok.convert_tokens_to_ids(STEP_SEPARATOR)
    for row, labels in enumerate(batch.labels):
        for position, label in enumerate(labels):
            is_sep = bool(batch.input_ids[row, position] == sep)
            assert (label != IGNORE_INDEX) == is_sep
    assert batch.labels[0][examples[0].label_positions[0]] == 2
    assert batch.labels[0][examples[0].label_positions[1]] == 0
    assert batch.labels[1][examples[1].label_positions[0]] == 1
    assert batch.weights.tolist() == [1.0, 1.0, 2.0]
    assert batch.tokens == sum(len(e.input_ids) for e in examples)


def test_length_grouped_batches_respect_the_budget_and_cover_everything():
    lengths = [5, 50, 7, 48, 6, 49, 100, 3]
    batches = length_grouped_batches(lengths, batch_tokens=100, seed=1)
    assert sorted(i for b in batches for i in b.indices) == list(range(len(lengths)))
    for b in batches:
        assert b.width == max(lengths[i] for i in b.indices)
        assert b.padded_tokens <= 100
    padded = sum(b.padded_tokens for b in batches)
    assert padded - sum(lengths) < 0.1 * sum(lengths)


def test_split_by_problem_is_disjoint_and_deterministic():
    sols = [LabeledSolution(f"p{i % 10}", ["x"], [1], problem_id=f"id{i % 10}") for i in range(50)]
    train, held = split_by_problem(sols, held_out_fraction=0.2, seed=3)
    assert {s.problem_id for s in train}.isdisjoint({s.problem_id for s in held})
    assert len({s.problem_id for s in held}) == 2
    assert len(train) + len(held) == 50
    assert split_by_problem(sols, held_out_fraction=0.2, seed=3) == (train, held)
