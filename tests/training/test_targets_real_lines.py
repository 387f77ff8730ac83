"""Real PRM800K lines -> training targets: every human rating is trained once, never again.

The expectation is worked out here from the raw JSON lines, independently of
`training/datasets.py`: the rated inputs a labeler produced (a solution prefix plus one step, the
step being the solution's own or a rated alternative), minus what the documented rules drop
(screening lines without gold, ratings after the first negative step of the solution, branches
past it). Identical inputs are one example whose ratings are votes, so the count is of distinct
rated inputs.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from labeling.imports import import_prm800k
from training.datasets import build_training_data
from training.prm.data import training_targets

pytestmark = pytest.mark.django_db

FILES = ("prm800k_sample_openr.jsonl", "prm800k_sample_phase2.jsonl")


def _lines(shared_data) -> list[dict]:
    out, seen = [], set()
    for name in FILES:
        for raw in (shared_data / name).read_text().splitlines():
            line = json.loads(raw)
            key = json.dumps(line, sort_keys=True)
            if key not in seen:  # the phase 2 file repeats one line; the import skips it
                seen.add(key)
                out.append(line)
    return out


def _solution_steps(line: dict) -> list[str]:
    """Phase 2: the pre-generated steps. Phase 1: chosen or written steps, up to the first with
    neither."""
    question = line["question"]
    if "pre_generated_steps" in question:
        return list(question["pre_generated_steps"])
    steps = []
    for step in line["label"]["steps"]:
        if step["chosen_completion"] is not None:
            steps.append(step["completions"][step["chosen_completion"]]["text"])
        elif step["human_completion"] is not None:
            steps.append(step["human_completion"]["text"])
        else:
            break
    return steps


def _expected_inputs(lines: list[dict]) -> tuple[dict[tuple, list[int]], int]:
    """{(problem, prefix, step text): votes} that should be trained, and all ratings given."""
    votes: dict[tuple, list[int]] = defaultdict(list)
    all_ratings = 0
    for line in lines:
        label_steps = line["label"]["steps"]
        all_ratings += sum(
            c["rating"] is not None for s in label_steps for c in (s["completions"] or [])
        ) + sum(
            s["human_completion"] is not None and s["human_completion"]["rating"] is not None
            for s in label_steps
        )
        if line["is_initial_screening_question"]:
            continue  # imported without gold: screening answers are not trained
        assert line["label"]["finish_reason"] != "bad_problem"
        problem = line["question"]["problem"]
        solution = _solution_steps(line)
        own_votes: dict[int, list[int]] = defaultdict(list)
        other_votes: dict[tuple[int, str], list[int]] = defaultdict(list)
        for position, step in enumerate(label_steps):
            if position > len(solution):
                break
            own = solution[position] if position < len(solution) else None
            human = step["human_completion"]
            if human is not None and human["rating"] is not None:
                own_votes[position].append(human["rating"])
            for completion in step["completions"] or []:
                if completion["rating"] is None:
                    continue
                if completion["text"] == own:
                    own_votes[position].append(completion["rating"])
                else:
                    other_votes[(position, completion["text"])].append(completion["rating"])
        # Every line here is the only labeling of its solution, so "merged" = this line's.
        first_error = next((p for p in sorted(own_votes) if _merged(own_votes[p]) == -1), None)
        for position, ratings in own_votes.items():
            if first_error is None or position <= first_error:
                votes[(problem, tuple(solution[:position]), solution[position])] += ratings
        for (position, text), ratings in other_votes.items():
            if first_error is None or position <= first_error:
                votes[(problem, tuple(solution[:position]), text)] += ratings
    return votes, all_ratings


def _merged(ratings: list[int]) -> int:
    counts = Counter(ratings)
    best = max(counts.values())
    return min(r for r, c in counts.items() if c == best)


def test_each_rated_input_of_the_real_lines_is_one_training_target(shared_data):
    for name in FILES:
        import_prm800k(shared_data / name)
    expected, _ = _expected_inputs(_lines(shared_data))

    data = build_training_data(heldout_fraction=0.0)

    trained: Counter[tuple] = Counter()
    negative = 0
    for solution in data.train + data.heldout:
        steps, targets = training_targets(solution, "prm")
        for index, target in enumerate(targets):
            if target is None:
                continue
            trained[(solution.problem, tuple(steps[:index]), steps[index])] += 1
            negative += target[0] >= 0.5
    repeated = {key: n for key, n in trained.items() if n > 1}
    assert not repeated, f"{len(repeated)} inputs are trained more than once"
    assert set(trained) == set(expected)
    assert sum(trained.values()) == len(expected)
    expected_negative = sum(_merged(v) == -1 for v in expected.values())
    assert negative == expected_negative
    assert data.snapshot["labeled_steps"] == len(expected)
