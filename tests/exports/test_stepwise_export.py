"""Stepwise-supervision export on hand-made labelings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from labeling.exports import iter_stepwise_lines
from tests.exports import factories as f

pytestmark = pytest.mark.django_db

T0 = datetime(2023, 3, 1, 12, 0, tzinfo=UTC)
PROBLEM = "Compute $2+2$."


def _found_error(by="alice", finish_reason="found_error", gen=None):
    sol = f.solution(["Start.", "Hmm.", "So it is 5."], problem_text=PROBLEM)
    steps = [
        {"completions": [("Start.", 1)], "chosen": 0},
        {"completions": [("Hmm.", 0)], "chosen": 0},
        {
            "completions": [("So it is 5.", -1), ("So it is 4.", 1), ("So it is 3.", -1)],
            "chosen": None,
        },
    ]
    return f.labeling(
        by=f.labeler(by), of=sol, steps=steps, timestamp=T0, finish_reason=finish_reason, gen=gen
    )


def _records(**options) -> list[dict]:
    """The records without their ids (test_record_ids covers those)."""
    records = [json.loads(line) for line in iter_stepwise_lines(**options)]
    assert all(list(r)[0] == "id" for r in records)
    return [{k: v for k, v in r.items() if k != "id"} for r in records]


def test_record_ids_name_the_labeling_and_the_branch():
    made = _found_error()
    ids = [json.loads(line)["id"] for line in iter_stepwise_lines()]
    # The path, then the alternatives offered at step 2 (completions 1 and 2).
    assert ids == [f"{made.pk}-path", f"{made.pk}-s2c1", f"{made.pk}-s2c2"]
    assert [json.loads(line)["id"] for line in iter_stepwise_lines()] == ids


def test_path_up_to_first_error_then_alternatives_as_branches():
    _found_error()
    assert _records() == [
        {
            "prompt": PROBLEM,
            "completions": ["Start.", "Hmm.", "So it is 5."],
            "labels": [True, True, False],
        },
        {
            "prompt": PROBLEM,
            "completions": ["Start.", "Hmm.", "So it is 4."],
            "labels": [True, True, True],
        },
        {
            "prompt": PROBLEM,
            "completions": ["Start.", "Hmm.", "So it is 3."],
            "labels": [True, True, False],
        },
    ]


def test_neutral_as_negative_stops_at_the_neutral_step():
    _found_error()
    assert _records(neutral_is_positive=False) == [
        {"prompt": PROBLEM, "completions": ["Start.", "Hmm."], "labels": [True, False]}
    ]


def test_without_alternatives_one_record_per_labeling():
    _found_error(by="alice")
    _found_error(by="bob", gen=f.generation(3))
    records = _records(include_alternatives=False)
    assert [r["labels"] for r in records] == [[True, True, False], [True, True, False]]
    assert len(_records(include_alternatives=False, generation=3)) == 1


def test_give_up_and_bad_problem_are_left_out_unless_asked():
    _found_error(by="alice", finish_reason="give_up")
    _found_error(by="bob", finish_reason="bad_problem")
    assert _records() == []
    assert len(_records(include_unfinished=True, include_alternatives=False)) == 2


def test_phase1_candidates_branch_and_human_step_ends_the_path():
    sol = f.solution(["a", "c"], problem_text=PROBLEM)
    steps = [
        {"completions": [("a", 1), ("b", -1)], "chosen": 0},
        {"completions": [("c", 0), ("d", None)], "chosen": 0},
        {"completions": [("e", -1)], "chosen": None},
    ]
    made = f.labeling(by=f.labeler("carol"), of=sol, steps=steps, timestamp=T0)
    last = made.steps.get(position=2)
    last.has_human_completion = True
    last.human_completion_text = "human step"
    last.human_completion_source = "human"
    last.save()
    assert _records() == [
        # The path follows the unrated human step at position 2, so it ends before it.
        {"prompt": PROBLEM, "completions": ["a", "c"], "labels": [True, True]},
        {"prompt": PROBLEM, "completions": ["b"], "labels": [False]},
        # Unrated candidate "d" gives no branch; the rated "e" beside the human step does.
        {"prompt": PROBLEM, "completions": ["a", "c", "e"], "labels": [True, True, False]},
    ]
