"""Write a synthetic PRM800K-scale phase 2 JSONL file (real format, made-up text).

    python benchmarks/make_prm800k.py --lines 100000 --output var/bench/prm800k_100k.jsonl

Each line is a phase 2 labeling with 10-20 pre-generated steps. About 55% stop at a first
negative step (1-4 rated alternatives there, ``chosen_completion`` null), 35% reach the end
(``solution``), the rest give up or report a bad problem. There are 50 labelers, generations 1-10,
one problem per 8 lines; ~3% of lines are quality-control items (a small set of solutions per
generation, each labeled by many labelers) and ~1% screening questions (generation -1). Ratings,
``flagged`` and timestamps vary the way the public data does. The same seed gives the same file.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

WORDS = (
    "we the of so and then is to let a by this gives that which sum product factor divide "
    "equation side both term value $x$ $y$ $n$ $2^k$ $\\frac{a}{b}$ $\\sqrt{3}$ $x^2+1$ root "
    "square prime odd even integer real angle triangle area circle radius"
).split()


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _problem(rng: random.Random, number: int) -> dict:
    return {
        "problem": f"Problem {number}: " + _sentence(rng, 12, 30),
        "ground_truth_solution": _sentence(rng, 20, 50)
        + f" So the answer is $\\boxed{{{number}}}$.",
        "ground_truth_answer": str(number),
    }


def _steps(rng: random.Random) -> list[str]:
    steps = [_sentence(rng, 8, 22) for _ in range(rng.randint(10, 20))]
    steps[-1] += f"\n\n# Answer\n\n{rng.randint(0, 999)}"
    return steps


def _completion(text: str, rating: int, flagged: bool | None) -> dict:
    return {"text": text, "rating": rating, "flagged": flagged}


def _label(rng: random.Random, steps: list[str]) -> dict:
    roll = rng.random()
    finish = (
        "found_error" if roll < 0.55 else "solution" if roll < 0.90 else
        "give_up" if roll < 0.96 else "bad_problem"
    )  # fmt: skip
    error_at = rng.randrange(len(steps)) if finish == "found_error" else None
    stop_at = rng.randrange(len(steps)) if finish in ("give_up", "bad_problem") else None
    labeled = []
    for position, text in enumerate(steps):
        if stop_at is not None and position > stop_at:
            break
        if position == error_at:
            alternatives = [
                _completion(_sentence(rng, 8, 22), rng.choice((1, 1, 0, -1)), False)
                for _ in range(rng.randint(1, 4))
            ]
            labeled.append(
                {
                    "completions": [_completion(text, -1, None), *alternatives],
                    "human_completion": None,
                    "chosen_completion": None,
                }
            )
            break
        rating = 1 if rng.random() < 0.8 else 0
        labeled.append(
            {
                "completions": [_completion(text, rating, None)],
                "human_completion": None,
                "chosen_completion": 0,
            }
        )
    return {
        "steps": labeled,
        "total_time": rng.randint(20_000, 900_000),
        "finish_reason": finish,
    }


def generate(lines: int, output: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    labelers = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(50)]
    problems = [_problem(rng, n) for n in range(max(1, lines // 8))]
    # Quality-control solutions: fixed per generation, each labeler labels each at most once.
    # The same solution always comes with the same verifier score (the importer keeps one).
    qc = {
        g: [(rng.randrange(len(problems)), _steps(rng), rng.random()) for _ in range(15)]
        for g in range(1, 11)
    }
    qc_done: set[tuple[int, int, int]] = set()
    moment = datetime(2022, 12, 1, 0, 0, 0)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as out:
        for index in range(lines):
            moment += timedelta(microseconds=rng.randint(1, 30_000_000))
            generation = 1 + index * 10 // lines
            labeler = rng.choice(labelers)
            is_qc = is_screening = False
            roll = rng.random()
            problem_index, steps, score = rng.randrange(len(problems)), None, rng.random()
            if roll < 0.03:
                pick = rng.randrange(15)
                if (generation, pick, labelers.index(labeler)) not in qc_done:
                    qc_done.add((generation, pick, labelers.index(labeler)))
                    problem_index, steps, score = qc[generation][pick]
                    is_qc = True
            elif roll < 0.04:
                generation, is_screening = -1, True
            steps = steps or _steps(rng)
            problem = problems[problem_index]
            line = {
                "labeler": labeler,
                "timestamp": moment.isoformat(),
                "generation": generation,
                "is_quality_control_question": is_qc,
                "is_initial_screening_question": is_screening,
                "question": {
                    **problem,
                    "pre_generated_steps": steps,
                    "pre_generated_answer": steps[-1].rsplit("\n", 1)[-1],
                    "pre_generated_verifier_score": score,
                },
                "label": _label(rng, steps),
            }
            out.write(json.dumps(line) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    output = args.output or Path("var/bench") / f"prm800k_{args.lines}.jsonl"
    generate(args.lines, output, args.seed)
    print(f"wrote {args.lines} lines to {output} ({output.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
