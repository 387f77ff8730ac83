"""Phase 1's step sampler: K candidates for the next step after a prefix, on both backends.

The scripted server pins the passes exactly (a blank first line, a bare `# Answer`, an answer on
the marker's line, a forced answer); the tiny local model and the real llama.cpp server show the
prefix really is continued and that the same seeds give the same candidates.
"""

from __future__ import annotations

import pytest

from tests.generator.conftest import ScriptedServer
from training.generator import GeneratorError, SamplingParams
from training.generator.local import LocalCausalLM
from training.generator.openai_compatible import OpenAICompatible
from training.generator.steps import (
    _BLANK_SALT,
    ends_solution,
    sample_next_steps,
    solution_prefix,
    step_seeds,
)

PROBLEM = "What is 2 + 3?"
PARAMS = SamplingParams(temperature=0.8, max_new_tokens=24)


def test_prefix_and_seeds():
    assert solution_prefix([]) == ""
    assert solution_prefix(["a", "b\n"]) == "a\nb\n"
    seeds = step_seeds(0, "k", 4)
    assert len(set(seeds)) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert step_seeds(0, "k", 4) == seeds and step_seeds(1, "k", 4) != seeds
    assert ends_solution("So it is 5.\n\n# Answer\n\n5") and not ends_solution("So it is 5.")


def _after(prompt: str) -> str:
    return prompt.rsplit("Solution:\n", 1)[-1]


def test_scripted_passes_blank_marker_inline_and_forced():
    """Each kind of first line ends up as one well-formed candidate, seeds in order."""

    seeds = [1000 + i for i in range(4)]

    def reply(problem, seed, index, body):
        answer = _after(body["prompt"])
        if answer.endswith("# Answer\n\n"):
            return "5\nmore text"  # the answer line; the rest is dropped
        if answer.endswith("\n\n"):  # asked again after the blank line
            kind = seeds.index(seed ^ _BLANK_SALT)
            return {1: "# Answer", 3: ""}[kind]
        return {
            0: "Add them: 2 + 3 = 5.\nand more",
            1: "",  # wants a blank line first, then a bare marker
            2: "# Answer: 5",
            3: "",  # ends: blank twice, forced to answer
        }[seeds.index(seed)]

    with ScriptedServer(reply, honour_n=False) as server:
        backend = OpenAICompatible(
            base_url=server.base_url, model="m", endpoint="completions", max_n=8
        )
        steps = ["First step.", "Second step."]
        stats: dict[str, int] = {}
        got = sample_next_steps(
            backend,
            problem=PROBLEM,
            steps=steps,
            seeds=seeds,
            params=SamplingParams(temperature=0.8, max_new_tokens=24, force_answer=True),
            stats=stats,
        )
    assert [c.text for c in got] == [
        "Add them: 2 + 3 = 5.",
        "# Answer\n\n5",
        "# Answer\n\n5",
        "# Answer\n\n5",
    ]
    assert [c.ends_solution for c in got] == [False, True, True, True]
    assert stats == {"calls": 3, "blank": 2, "answer": 2}
    # Every request continued the trajectory so far and stopped at the line's end.
    assert all(
        _after(r["prompt"]).startswith("First step.\nSecond step.\n") for r in server.requests
    )
    assert all("\n" in r["stop"] for r in server.requests)


def test_ended_without_force_is_left_out():
    with ScriptedServer(lambda *a: "", honour_n=False) as server:
        backend = OpenAICompatible(base_url=server.base_url, model="m", endpoint="completions")
        got = sample_next_steps(backend, problem=PROBLEM, steps=[], seeds=[1, 2], params=PARAMS)
    assert got == []


def test_chat_endpoint_cannot_continue_a_prefix():
    with ScriptedServer(lambda *a: "x") as server:
        backend = OpenAICompatible(base_url=server.base_url, model="m", endpoint="chat")
        with pytest.raises(GeneratorError, match="completions endpoint"):
            sample_next_steps(backend, problem=PROBLEM, steps=["a"], seeds=[1], params=PARAMS)


def test_local_backend_continues_the_prefix_deterministically(tiny_generator):
    backend = LocalCausalLM(tiny_generator)
    seeds = step_seeds(7, "trajectory", 3)
    first = sample_next_steps(backend, problem=PROBLEM, steps=["Add."], seeds=seeds, params=PARAMS)
    again = sample_next_steps(backend, problem=PROBLEM, steps=["Add."], seeds=seeds, params=PARAMS)
    other = sample_next_steps(
        backend, problem=PROBLEM, steps=["Subtract."], seeds=seeds, params=PARAMS
    )
    assert first == again
    assert [c.text for c in first] != [c.text for c in other]
    for candidate in first:
        assert "\n" not in candidate.text or candidate.ends_solution
        assert candidate.text == candidate.text.strip()
        assert not any(ord(ch) < 32 and ch != "\n" for ch in candidate.text)


def test_llama_server_gives_single_line_candidates(llama_server):
    backend = OpenAICompatible(
        base_url=llama_server, model="smollm2", endpoint="completions", max_n=1
    )
    got = sample_next_steps(
        backend,
        problem="How many seconds are in 7.8 minutes?",
        steps=["There are 60 seconds in a minute."],
        seeds=step_seeds(0, "llama", 2),
        params=SamplingParams(temperature=0.7, max_new_tokens=32),
    )
    assert 1 <= len(got) <= 2
    for candidate in got:
        assert candidate.text and ("\n" not in candidate.text or candidate.ends_solution)
