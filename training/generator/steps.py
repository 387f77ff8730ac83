"""Phase 1: sample candidates for the next step of a started solution (no Django here).

The labeler's trajectory so far is the answer's prefix, one step per line; each candidate is the
next line the model writes after it. Three passes at most, each batched over the candidates that
need it (most need only the first):

1. one line (stop at the newline), all K seeds in one request, so a local model reads the
   problem and the prefix once;
2. a candidate that came back blank either wanted a blank line first (the worked examples put
   one before `# Answer`) or ended the text: it is asked again after that blank line;
3. a candidate that is an answer marker (`# Answer`) without the answer gets the answer line, so
   a final candidate reads as PRM800K writes one: `# Answer\n\n29`. A model that ended without
   any answer is forced to one when the round asks for `force_answer`.

Candidate *i* draws from its own seed in every pass, so sampling the same prefix again with the
same seeds gives the same candidates (up to the backend's determinism).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from training.generator.base import Backend, SampleRequest, SamplingParams
from training.generator.parse import _marker_answer
from training.generator.prompt import ANSWER_MARKER

ANSWER_BLOCK = f"\n\n{ANSWER_MARKER}\n\n"
# Tokens of the answer line written after a marker.
ANSWER_TOKENS = 32
_BLANK_SALT = 0x1B1B1B1B
_ANSWER_SALT = 0x5A5A5A5A


@dataclass(frozen=True)
class StepCandidate:
    text: str
    finish_reason: str  # "stop" or "length" (the line ran past max_new_tokens)
    completion_tokens: int
    ends_solution: bool  # holds the final answer

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def solution_prefix(steps: Sequence[str]) -> str:
    """The answer text the model continues: each step on its own line."""
    return "".join(step.strip("\n") + "\n" for step in steps)


def ends_solution(text: str) -> bool:
    """Does a step carry the final answer (a `# Answer` line, as PRM800K's last steps do)?"""
    return any(_marker_answer(line.strip())[0] for line in text.split("\n"))


def step_seeds(seed: int, key: str, k: int) -> list[int]:
    """K seeds for one position of one trajectory (31 bits, which every server accepts)."""
    seeds = []
    for index in range(k):
        digest = hashlib.sha256(f"{seed}\x1f{key}\x1f{index}".encode()).digest()
        seeds.append(int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF)
    return seeds


# Control characters other than tab and newline: a model can emit them (NUL cannot even be
# stored in Postgres text) and no step needs them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _first_line(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").split("\n", 1)[0]).strip()


def sample_next_steps(
    backend: Backend,
    *,
    problem: str,
    steps: Sequence[str],
    seeds: Sequence[int],
    params: SamplingParams,
    lead: str = "",
    stats: dict[str, int] | None = None,
) -> list[StepCandidate]:
    """Up to ``len(seeds)`` candidates for the step after ``steps``, in seed order.

    Candidates the model could not make into a step (it ended with nothing, and no answer is
    forced) are left out, so fewer than K may come back. ``stats``, when given, gets how many
    backend calls were made and how many candidates needed the second and third passes.
    ``lead`` is written after a non-empty prefix before the model starts (``"\n"`` for a model
    that puts a blank line between steps, which would otherwise cost every candidate a second
    pass).
    """
    stats = stats if stats is not None else {}
    stats.update(calls=1, blank=0, answer=0)
    prefix = solution_prefix(steps)
    start = prefix + lead if steps else prefix
    line = dataclasses.replace(params, stop=("\n", *params.stop), force_answer=False)
    first = backend.sample([SampleRequest(problem=problem, seeds=tuple(seeds), prefix=start)], line)
    lines = [(_first_line(c.text), c.finish_reason, c.completion_tokens) for c in first[0]]

    # 2. Blank: ask again after the blank line the model wanted.
    blank = [i for i, (text, _, _) in enumerate(lines) if not text]
    if blank:
        stats["calls"] += 1
        stats["blank"] = len(blank)
        again = backend.sample(
            [
                SampleRequest(problem=problem, seeds=(seeds[i] ^ _BLANK_SALT,), prefix=start + "\n")
                for i in blank
            ],
            line,
        )
        for i, completions in zip(blank, again, strict=True):
            c = completions[0]
            lines[i] = (_first_line(c.text), c.finish_reason, lines[i][2] + c.completion_tokens)

    # 3. Answers: a bare marker gets its answer line; an ended text gets one when forced.
    texts: list[str | None] = []
    need_answer: list[int] = []
    for i, (text, _, _) in enumerate(lines):
        is_marker, inline = _marker_answer(text) if text else (False, "")
        if is_marker and inline:
            texts.append(ANSWER_BLOCK.lstrip("\n") + inline)
        elif is_marker or (not text and params.force_answer):
            texts.append(None)
            need_answer.append(i)
        else:
            texts.append(text or None)
    if need_answer:
        stats["calls"] += 1
        stats["answer"] = len(need_answer)
        answer_params = dataclasses.replace(
            line, max_new_tokens=ANSWER_TOKENS, stop=("\n",), force_answer=False
        )
        marker_prefix = prefix + ANSWER_BLOCK.lstrip("\n")
        answers = backend.sample(
            [
                SampleRequest(
                    problem=problem, seeds=(seeds[i] ^ _ANSWER_SALT,), prefix=marker_prefix
                )
                for i in need_answer
            ],
            answer_params,
        )
        for i, completions in zip(need_answer, answers, strict=True):
            answer = _first_line(completions[0].text)
            if answer:
                texts[i] = ANSWER_BLOCK.lstrip("\n") + answer
                lines[i] = (
                    lines[i][0],
                    lines[i][1],
                    lines[i][2] + completions[0].completion_tokens,
                )

    return [
        StepCandidate(
            text=text,
            finish_reason=reason,
            completion_tokens=tokens,
            ends_solution=ends_solution(text),
        )
        for text, (_, reason, tokens) in zip(texts, lines, strict=True)
        if text
    ]
