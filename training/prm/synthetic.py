"""A synthetic world for tests, demos and benchmarks: no downloads, seconds to build.

Problems are chains of arithmetic on one quantity ("Ava has 12 pears. She buys 7 more. ...").
Sampled solutions restate each operation and its arithmetic, one step each. A solution may contain
one root mistake, of a kind a person makes:
  * arithmetic slip       "She buys 7 more, so 12 + 7 = 21."      (wrong in the step itself)
  * wrong operation       "She gives away 5, so 19 + 5 = 24."     (verb and sign disagree)
  * copied wrong number   "She buys 8 more, so 12 + 8 = 20."      (problem said 7)
  * carried wrong value   "She gives away 5, so 21 - 5 = 16."     (previous result was 19)
  * wrong final answer    "The answer is 41."                     (last result was 14)
after which it carries on consistently from the wrong value, so the final answer is wrong too.
Every mistake is decidable from the step and its context, so a tiny model can learn to spot it.
What makes it learnable in minutes on a CPU (measured, BENCHMARKS.md): small quantities (1..20 by
default, so the arithmetic is a small table), wrong numbers that do not occur earlier in the text
(a look-back finds them), and training on many problems seen once each, most with a mistake
(`error_rate=1.0`); few problems seen many times get memorised instead.
Ratings follow PRM800K phase 2: 1 (or 0 for a correct but idle restatement) up to the first wrong
step, -1 there, nothing after.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import STEP_SEPARATOR, LabeledSolution

if TYPE_CHECKING:
    import torch

    from .score import SolutionScores

NAMES = {"Ava": "She", "Ben": "He", "Cleo": "She", "Dan": "He", "Fay": "She", "Gus": "He"}
NAMES |= {"Hana": "She", "Ivan": "He", "Jo": "She", "Kai": "He", "Lena": "She", "Omar": "He"}
ITEMS = ["apples", "pears", "coins", "stamps", "marbles", "books", "shells", "cards"]


@dataclass
class _Op:
    kind: str  # add | sub | mul | div
    k: int

    def apply(self, x: int) -> int:
        if self.kind == "add":
            return x + self.k
        if self.kind == "sub":
            return x - self.k
        if self.kind == "mul":
            return x * self.k
        return x // self.k

    @property
    def sign(self) -> str:
        return {"add": "+", "sub": "-", "mul": "*", "div": "/"}[self.kind]

    def sentence(self, pronoun: str, k: int | None = None, variant: int = 0) -> str:
        """The operation in words; `variant` picks one of a few phrasings (0 = the problem's)."""
        k = self.k if k is None else k
        if self.kind == "add":
            return f"{pronoun} {('buys', 'gets', 'finds')[variant % 3]} {k} more"
        if self.kind == "sub":
            return f"{pronoun} {('gives away', 'loses', 'sells')[variant % 3]} {k}"
        if self.kind == "mul":
            return f"{pronoun} makes it {k} times as many"
        return f"{pronoun} keeps one of {k} equal shares"


# Solutions word the same reasoning in several ways, as sampled solutions do: right solutions of
# one problem then differ in text (and score), not only wrong ones.
CONNECTORS = (", so", ", which makes", ", that is", ":")
OPENINGS = ("{P} starts with {x} {item}.", "At first {p} has {x} {item}.")
ENDINGS = ("The answer is {n}.", "So the answer is {n}.", "In the end {p} has {n}.")


@dataclass
class SyntheticSolution(LabeledSolution):
    """A labeled solution that also knows the kind of its root mistake (None when it has none)."""

    mistake: str | None = None


@dataclass
class Problem:
    problem_id: str
    text: str
    start: int
    ops: list[_Op]
    item: str
    pronoun: str
    answer: int
    difficulty: float


def _make_problem(
    rng: random.Random, index: int, *, min_ops: int = 3, max_ops: int = 6, max_value: int = 20
) -> Problem:
    """Quantities stay within 1..max_value: each number token is then seen often enough for a
    tiny model to learn what it means."""
    name = rng.choice(sorted(NAMES))
    pronoun = NAMES[name]
    item = rng.choice(ITEMS)
    x = rng.randint(2, max(2, max_value // 3))
    start = x
    ops: list[_Op] = []
    for _ in range(rng.randint(min_ops, max_ops)):
        choices = []
        if x + 1 <= max_value:
            choices += ["add", "add"]
        if x >= 2:
            choices += ["sub", "sub"]
        if 2 * x <= max_value:
            choices.append("mul")
        divisors = [k for k in (2, 3) if x % k == 0 and x >= 2 * k]
        if divisors:
            choices.append("div")
        kind = rng.choice(choices)
        if kind == "add":
            op = _Op("add", rng.randint(1, min(12, max_value - x)))
        elif kind == "sub":
            op = _Op("sub", rng.randint(1, min(12, x - 1)))
        elif kind == "mul":
            op = _Op("mul", rng.choice([k for k in (2, 3) if k * x <= max_value]))
        else:
            op = _Op("div", rng.choice(divisors))
        ops.append(op)
        x = op.apply(x)
    sentences = [f"{name} has {start} {item}."]
    for i, op in enumerate(ops):
        sentences.append(
            ("Then " if i else "") + op.sentence(pronoun.lower() if i else pronoun) + "."
        )
    sentences.append(f"How many {item} does {name} have now?")
    return Problem(
        problem_id=f"synthetic-{index}",
        text=" ".join(sentences),
        start=start,
        ops=ops,
        item=item,
        pronoun=pronoun,
        answer=x,
        difficulty=rng.uniform(0.3, 1.7),
    )


MISTAKES = ("slip", "operation", "copy", "carry", "final")
NUMBER_VOCABULARY = 1000
# Every kind equally likely; the final answer is one more slot with the same chance.
MISTAKE_WEIGHTS = (1, 1, 1, 1)


def _slip(rng: random.Random, y: int) -> int:
    """A wrong result that looks close: last digit off by one or two, or two digits swapped."""
    text = str(abs(y))
    if len(text) >= 2 and text[-1] != text[-2] and rng.random() < 0.3:
        swapped = int(text[:-2] + text[-1] + text[-2])
        return swapped if y >= 0 else -swapped
    return y + rng.choice([-2, -1, 1, 2])


def _numbers_in(text: str) -> set[int]:
    return {int(w) for w in text.replace(".", " ").replace(",", " ").split() if w.isdigit()}


def _sample_solution(
    problem: Problem, rng: random.Random, *, error_rate: float, fresh_mistakes: bool = True
) -> SyntheticSolution:
    """`fresh_mistakes`: a wrong number never occurs earlier in the text, so spotting it takes
    one look back ("was this number there?") rather than knowing which earlier number it copies."""
    steps: list[str] = []
    ratings: list[int | None] = []
    wrong = False  # a root mistake has happened: later steps are unrated
    root: str | None = None
    seen = _numbers_in(problem.text)

    def add(text: str, rating: int, kind: str | None = None) -> None:
        nonlocal wrong, root
        steps.append(text)
        seen.update(_numbers_in(text))
        if not wrong:
            ratings.append(rating)
            wrong = rating == -1
            if wrong:
                root = kind

    def wrong_value(
        make: Callable[..., int], right: int, ok: Callable[[int], bool] = lambda v: True
    ) -> int:
        """A wrong value from `make`, fresh when asked; `right` when none is found."""
        for _ in range(8):
            value = make()
            if value != right and ok(value) and not (fresh_mistakes and value in seen):
                return value
        return right

    n_slots = len(problem.ops) + 1
    p_step = min(0.9, error_rate * problem.difficulty / n_slots * 2)
    x = problem.start
    pronoun = problem.pronoun
    opening = rng.choice(OPENINGS)
    add(opening.format(P=pronoun, p=pronoun.lower(), x=x, item=problem.item), 1)
    for op in problem.ops:
        mistake = None
        if not wrong and rng.random() < p_step:
            mistake = rng.choices(MISTAKES[:4], weights=MISTAKE_WEIGHTS)[0]
        if mistake == "slip" and op.kind == "div":
            mistake = "copy"
        shown_x, k, kind = x, op.k, op.kind
        if mistake == "carry":
            shown_x = wrong_value(lambda x=x: _slip(rng, x), x, lambda v: v >= 0)
            if shown_x == x:
                mistake = None
        if mistake == "copy":

            def valid(v: int, kind: str = kind, shown_x: int = shown_x) -> bool:
                if kind == "div":
                    return v >= 2 and shown_x % v == 0
                return v >= 2 if kind == "mul" else v >= 1

            k = wrong_value(lambda k=op.k: k + rng.choice([-2, -1, 1, 2]), op.k, valid)
            if k == op.k:
                mistake = None
        if mistake == "operation":
            swap = {"add": "sub", "sub": "add", "mul": "add", "div": "mul"}
            kind = swap[op.kind]
        computed = _Op(kind, k)
        if computed.kind == "div" and shown_x % k:
            y = shown_x // k  # only reached after a mistake: the carried-on step is wrong too
        else:
            y = computed.apply(shown_x)
        if mistake == "slip":
            y = _slip(rng, y)
        clause = op.sentence(pronoun, k, variant=rng.randrange(3))
        text = f"{clause}{rng.choice(CONNECTORS)} {shown_x} {computed.sign} {k} = {y}."
        add(text, -1 if mistake else 1, mistake)
        x = y
        # Idle restatements come as often after a mistake (restating the wrong value, unrated)
        # as before it. Written only before one, a restatement certified every step above it,
        # a cue an ORM reading the whole solution learned and a PRM scoring each step as it
        # ends cannot use (measured in BENCHMARKS.md, synthetic quality).
        if rng.random() < 0.15:
            add(f"So far {pronoun.lower()} has {x} {problem.item}.", 0)
    final = x
    if not wrong and rng.random() < p_step:
        final = wrong_value(lambda x=x: _slip(rng, x), x)
    ending = rng.choice(ENDINGS)
    add(ending.format(p=pronoun.lower(), n=final), -1 if final != x else 1, "final")
    return SyntheticSolution(
        problem=problem.text,
        steps=steps,
        ratings=ratings,
        problem_id=problem.problem_id,
        is_correct=final == problem.answer,
        answer=str(final),
        mistake=root,
    )


def make_problems(
    num_problems: int, *, seed: int = 0, min_ops: int = 3, max_ops: int = 6, max_value: int = 20
) -> list[Problem]:
    rng = random.Random(seed)
    return [
        _make_problem(rng, i, min_ops=min_ops, max_ops=max_ops, max_value=max_value)
        for i in range(num_problems)
    ]


def make_world(
    num_problems: int,
    solutions_per_problem: int,
    *,
    seed: int = 0,
    error_rate: float = 0.5,
    min_ops: int = 3,
    max_ops: int = 6,
    max_value: int = 20,
    fresh_mistakes: bool = True,
) -> list[SyntheticSolution]:
    """`solutions_per_problem` sampled solutions for each of `num_problems` problems.

    `error_rate` is roughly the share of solutions with a mistake on an average problem; each
    problem also has its own difficulty, so some are much harder than others (as in MATH).
    A solution has one step per operation (`min_ops`..`max_ops`), a first and a final step, and
    now and then an idle restatement (rated 0). `max_value` bounds every quantity;
    `fresh_mistakes` keeps wrong numbers out of the earlier text (see `_sample_solution`).
    """
    if num_problems < 1 or solutions_per_problem < 1:
        raise ValueError("num_problems and solutions_per_problem must be positive")
    rng = random.Random(seed + 1)
    world = []
    problems = make_problems(
        num_problems, seed=seed, min_ops=min_ops, max_ops=max_ops, max_value=max_value
    )
    for problem in problems:
        for _ in range(solutions_per_problem):
            world.append(
                _sample_solution(problem, rng, error_rate=error_rate, fresh_mistakes=fresh_mistakes)
            )
    return world


def world_text(solutions: Sequence[LabeledSolution]) -> list[str]:
    return [s.problem + "\n" + " ".join(s.steps) for s in solutions]


def build_tokenizer(texts: list[str]) -> Any:
    """A word-level tokenizer trained on `texts` (every word and number is one token)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    # Whole numbers are single tokens: checking a copied number is then one token match, which a
    # two-layer model learns in minutes (digit pieces would need multi-token comparisons).
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<pad>", "<unk>", "<s>", "</s>", STEP_SEPARATOR]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=[STEP_SEPARATOR],
    )


def build_tiny_backbone(
    path: str,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 1024,
    number_features: bool = True,
) -> str:
    """Tokenizer trained on synthetic text + a small Llama from a config, saved (HF format).

    `number_features`: number tokens start with their value written into the embedding (see
    `_embed_number_values`): last digit and rough size are readable from the start instead of
    first having to be discovered from co-occurrence (measured: held-out step AUROC +0.005 to
    +0.035 on the synthetic world; it does not by itself make slips learnable).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = world_text(make_world(300, 4, seed=seed + 12345))
    # Every number a solution can reach, so none becomes <unk>.
    texts.append(" ".join(str(n) for n in range(NUMBER_VOCABULARY)) + " + - * / = . , ?")
    tokenizer = build_tokenizer(texts)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # Llama's default 0.02 suits wide models; at width 64 it leaves attention almost uniform
        # and its gradients tiny, and relations between tokens are learned far too slowly.
        initializer_range=hidden_size**-0.5,
    )
    model = LlamaForCausalLM(config)
    if number_features:
        _embed_number_values(model.get_input_embeddings().weight, tokenizer)
    Path(path).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# Periods of the value features: 10 and 5 give the last digit (where slips show), the long ones
# place the number on an arc covering every value a solution reaches (nearly linear there).
NUMBER_PERIODS = (10.0, 5.0, 2.0 * NUMBER_VOCABULARY, 8.0 * NUMBER_VOCABULARY / 3)


def _embed_number_values(weight: torch.Tensor, tokenizer: Any) -> None:
    """Write (cos, sin)(2 pi n / T) for each period T into the first dimensions of every number
    token's embedding (the rest stays random), at the norm a random row has there.

    Every pair has constant norm, so RMSNorm keeps the geometry: x + k = y becomes a rotation, and
    an off-by-one or swapped last digit moves the period-10 pair by a whole tenth of a turn.
    """
    import math

    import torch

    dims = 2 * len(NUMBER_PERIODS)
    if weight.shape[1] < 2 * dims:
        return  # too narrow to spare the dimensions: stay purely random
    with torch.no_grad():
        scale = float(weight[:, :dims].norm(dim=1).mean()) / math.sqrt(len(NUMBER_PERIODS))
        for token, index in tokenizer.get_vocab().items():
            if not token.lstrip("-").isdigit():
                continue
            n = int(token)
            for j, period in enumerate(NUMBER_PERIODS):
                angle = 2 * math.pi * n / period
                weight[index, 2 * j] = scale * math.cos(angle)
                weight[index, 2 * j + 1] = scale * math.sin(angle)


def mistake_aurocs(
    scores: Sequence[SolutionScores], solutions: list[SyntheticSolution]
) -> dict[str, float]:
    """Held-out step AUROC per mistake kind: every good step against the first-wrong steps of
    that kind (goodness = P(positive) + P(neutral), as in `evaluate.step_metrics`). It shows which
    checks a PRM has learned, e.g. local ones (sign vs verb) but not look-ups (copied numbers)."""
    from .evaluate import _auroc, _goodness

    good: list[float] = []
    bad: dict[str, list[float]] = {}
    for s, solution in zip(scores, solutions, strict=True):
        for index, rating in enumerate(solution.ratings[: len(s.step_probs)]):
            if rating is None:
                continue
            goodness = _goodness(s.step_probs[index])
            if rating >= 0:
                good.append(goodness)
            else:
                bad.setdefault(solution.mistake or "unknown", []).append(goodness)
                break
    return {
        kind: _auroc([1] * len(good) + [0] * len(values), good + values)
        for kind, values in sorted(bad.items())
    }
