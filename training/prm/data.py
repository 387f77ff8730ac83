"""Training examples for process and outcome reward models, and the one input format they share.

Everything that turns (problem, steps) into token ids lives here, so the trainer and the scorer can
never disagree about where a step ends: both call `encode_solution`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

STEP_SEPARATOR = "<|step|>"

# Class order of the 3-way head. A rating r in {-1, 0, 1} maps to class r + 1.
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2
IGNORE_INDEX = -100


@dataclass
class LabeledSolution:
    problem: str
    steps: list[str]
    # -1/0/1 per step; may be shorter than steps (unlabeled tail). None = step not rated.
    # Training uses steps up to and including the first -1.
    ratings: list[int | None]
    problem_id: str = ""
    is_correct: bool | None = None
    weight: float = 1.0
    answer: str | None = None  # the solution's final answer (majority vote, best-of-N)
    # Optional soft targets per step, (p_negative, p_neutral, p_positive), e.g. the share of
    # labelers who chose each rating. When given they win over `ratings` for that step.
    soft_ratings: list[tuple[float, float, float] | None] | None = None


@dataclass
class EncodedSolution:
    """Token ids of one formatted solution and the index of every step's separator token."""

    input_ids: list[int]
    step_ends: list[int]  # one per encoded step, in order; steps that did not fit are absent
    num_steps: int  # how many leading steps made it into `input_ids`
    # Ids before the first step (bos + problem): the same for every solution of one problem, so
    # a batch can compute them once for all of them (segments.py).
    prefix_length: int = 0


def encode_solution(
    tokenizer: Any,
    problem: str,
    steps: Sequence[str],
    *,
    max_length: int,
    separator_id: int | None = None,
) -> EncodedSolution:
    """Format `problem` and `steps` as `[bos] problem \\n step1 <sep> step2 <sep> ...`.

    The head is read at each `<sep>`: it is the last token of its step and sees the problem and
    every step up to it. When the text is longer than `max_length` the problem keeps at most half
    the budget, then whole steps are added while their separator fits; a single step that alone
    overflows is cut so that at least one step is always encoded.
    """
    if max_length < 4:
        raise ValueError("max_length must be at least 4")
    if separator_id is None:
        separator_id = tokenizer.convert_tokens_to_ids(STEP_SEPARATOR)
    ids: list[int] = []
    if tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
    problem_ids = tokenizer(problem + "\n", add_special_tokens=False)["input_ids"]
    ids.extend(problem_ids[: max(1, max_length // 2 - len(ids))])
    prefix_length = len(ids)
    step_ends: list[int] = []
    for step in steps:
        step_ids = tokenizer(step, add_special_tokens=False)["input_ids"]
        room = max_length - len(ids) - 1  # one slot for the separator
        if len(step_ids) > room:
            if step_ends or room < 1:
                break
            step_ids = step_ids[:room]
        ids.extend(step_ids)
        ids.append(separator_id)
        step_ends.append(len(ids) - 1)
    return EncodedSolution(
        input_ids=ids, step_ends=step_ends, num_steps=len(step_ends), prefix_length=prefix_length
    )


def rating_target(rating: int) -> tuple[float, float, float]:
    if rating not in (-1, 0, 1):
        raise ValueError(f"rating must be -1, 0 or 1, not {rating!r}")
    target = [0.0, 0.0, 0.0]
    target[rating + 1] = 1.0
    return (target[0], target[1], target[2])


def training_targets(
    solution: LabeledSolution, objective: str = "prm"
) -> tuple[list[str], list[tuple[float, float, float] | None]]:
    """Steps to put in the input and the target distribution at each one (None = not trained).

    PRM: steps up to and including the first -1, trailing unrated steps dropped (they would only
    cost compute: causal attention means they cannot change earlier positions).
    ORM: every step, each separator trained on the final-answer label (as in the paper's ORM,
    which is trained on all positions with the outcome label); scoring reads the last one.
    """
    if objective == "orm":
        if solution.is_correct is None or not solution.steps:
            return [], []
        target = rating_target(1 if solution.is_correct else -1)
        return list(solution.steps), [target] * len(solution.steps)
    if objective != "prm":
        raise ValueError(f"objective must be 'prm' or 'orm', not {objective!r}")
    targets: list[tuple[float, float, float] | None] = []
    for index, step_text in enumerate(solution.steps):
        del step_text
        soft = None
        if solution.soft_ratings is not None and index < len(solution.soft_ratings):
            soft = solution.soft_ratings[index]
        rating = solution.ratings[index] if index < len(solution.ratings) else None
        if soft is not None:
            total = float(sum(soft))
            if total <= 0 or any(p < 0 for p in soft):
                raise ValueError(f"soft rating {soft!r} is not a distribution")
            targets.append((soft[0] / total, soft[1] / total, soft[2] / total))
        elif rating is not None:
            targets.append(rating_target(rating))
        else:
            targets.append(None)
        if rating == -1 or (soft is not None and rating is None and soft[0] >= 0.5):
            break
    while targets and targets[-1] is None:
        targets.pop()
    return list(solution.steps[: len(targets)]), targets


@dataclass
class TrainingExample:
    input_ids: list[int]
    label_positions: list[int]
    targets: list[tuple[float, float, float]]
    weight: float = 1.0
    prefix_length: int = 0  # the problem's ids (EncodedSolution.prefix_length)


def build_examples(
    solutions: Iterable[LabeledSolution],
    tokenizer: Any,
    *,
    objective: str = "prm",
    max_length: int,
) -> list[TrainingExample]:
    """Encode each labeled solution once (no duplicated prefixes); drop ones with nothing to learn."""
    separator_id = tokenizer.convert_tokens_to_ids(STEP_SEPARATOR)
    examples = []
    for solution in solutions:
        steps, targets = training_targets(solution, objective)
        if not steps:
            continue
        encoded = encode_solution(
            tokenizer, solution.problem, steps, max_length=max_length, separator_id=separator_id
        )
        positions, kept = [], []
        for position, target in zip(encoded.step_ends, targets[: encoded.num_steps], strict=True):
            if target is not None:
                positions.append(position)
                kept.append(target)
        if positions:
            examples.append(
                TrainingExample(
                    encoded.input_ids,
                    positions,
                    kept,
                    float(solution.weight),
                    prefix_length=encoded.prefix_length,
                )
            )
    return examples


@dataclass
class Batch:
    indices: list[int]
    width: int  # padded length of every row

    @property
    def padded_tokens(self) -> int:
        return self.width * len(self.indices)


def length_grouped_batches(
    lengths: Sequence[int], *, batch_tokens: int, seed: int | None = 0, max_rows: int = 512
) -> list[Batch]:
    """Group sequences of similar length so that rows * longest <= batch_tokens.

    Sorting by length (with a little noise so epochs differ) keeps padding to a few percent; the
    batch order is then shuffled so training does not see short solutions first.
    """
    rng = random.Random(seed)
    order = sorted(
        range(len(lengths)),
        key=lambda i: (lengths[i], rng.random() if seed is not None else 0.0),
    )
    batches: list[Batch] = []
    current: list[int] = []
    width = 0
    for index in order:
        new_width = max(width, lengths[index])
        if current and (new_width * (len(current) + 1) > batch_tokens or len(current) >= max_rows):
            batches.append(Batch(current, width))
            current, new_width = [], lengths[index]
        current.append(index)
        width = new_width
    if current:
        batches.append(Batch(current, width))
    if seed is not None:
        rng.shuffle(batches)
    return batches


def problem_grouped_batches(
    problems: Sequence[object],
    lengths: Sequence[int],
    *,
    batch_tokens: int,
    seed: int | None = 0,
    max_rows: int = 512,
) -> list[Batch]:
    """Batches of whole problems: all solutions of a problem side by side (so a packed batch
    computes the problem's tokens once, segments.py), each batch's solutions summing to at most
    `batch_tokens` tokens. A problem that does not fit the rest of a batch continues in the next.

    Problems come in a seeded random order (no padding to avoid: packed rows have none), so epochs
    differ; `Batch.width` is the longest solution (a packed batch is one row of its own length).
    """
    rng = random.Random(seed)
    members: dict[object, list[int]] = {}
    for index, problem in enumerate(problems):
        members.setdefault(problem, []).append(index)
    groups = list(members.values())
    if seed is not None:
        rng.shuffle(groups)
    batches: list[Batch] = []
    current: list[int] = []
    used = 0
    for group in groups:
        for index in group:
            if current and (used + lengths[index] > batch_tokens or len(current) >= max_rows):
                batches.append(Batch(current, max(lengths[i] for i in current)))
                current, used = [], 0
            current.append(index)
            used += lengths[index]
    if current:
        batches.append(Batch(current, max(lengths[i] for i in current)))
    return batches


@dataclass
class Collated:
    input_ids: torch.Tensor  # torch.LongTensor [rows, width]
    attention_mask: torch.Tensor | None  # torch.LongTensor [rows, width]; None when packed
    # Flat list of (row, position) pairs where the head is read, and their targets/weights.
    rows: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor  # torch.FloatTensor [n_labels, 3]
    weights: torch.Tensor  # torch.FloatTensor [n_labels]
    tokens: int = 0  # real (non-pad) tokens

    @property
    def labels(self) -> list[list[int]]:
        """Per row, the token-level view of the hard labels (-100 = none); built only on request
        (training reads (row, position) pairs, so the trainer never pays for it)."""
        rows, width = self.input_ids.shape
        out = [[IGNORE_INDEX] * width for _ in range(rows)]
        for row, position, target in zip(
            self.rows.tolist(), self.positions.tolist(), self.targets.tolist(), strict=True
        ):
            out[row][position] = max(range(3), key=target.__getitem__)
        return out


def collate(examples: Sequence[TrainingExample], *, pad_id: int) -> Collated:
    """Right-pad a batch; labels are addressed by (row, position) so soft targets survive intact."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    rows, positions, targets, weights = [], [], [], []
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        attention_mask[row, :n] = 1
        rows.extend([row] * len(example.label_positions))
        positions.extend(example.label_positions)
        targets.extend(example.targets)
        weights.extend([example.weight] * len(example.label_positions))
    return Collated(
        input_ids=input_ids,
        attention_mask=attention_mask,
        rows=torch.tensor(rows, dtype=torch.long),
        positions=torch.tensor(positions, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.float32),
        weights=torch.tensor(weights, dtype=torch.float32),
        tokens=int(attention_mask.sum()),
    )


def split_by_problem(
    solutions: Sequence[LabeledSolution], *, held_out_fraction: float = 0.1, seed: int = 0
) -> tuple[list[LabeledSolution], list[LabeledSolution]]:
    """Split so that no problem has solutions on both sides (keyed on problem_id, else the text)."""
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError("held_out_fraction must be in [0, 1)")
    keys = sorted({s.problem_id or s.problem for s in solutions})
    rng = random.Random(seed)
    rng.shuffle(keys)
    n_held = round(len(keys) * held_out_fraction)
    if held_out_fraction > 0 and len(keys) > 1:
        n_held = min(max(n_held, 1), len(keys) - 1)
    held = set(keys[:n_held])
    train = [s for s in solutions if (s.problem_id or s.problem) not in held]
    test = [s for s in solutions if (s.problem_id or s.problem) in held]
    return train, test
