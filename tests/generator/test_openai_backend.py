"""The OpenAI-compatible backend: against a real llama.cpp server (SmolLM2's GGUF), and against a
scripted server for what a real one will not do on demand (fail, stall, honour `n` or not)."""

from __future__ import annotations

import pytest

from tests.generator.conftest import ScriptedServer, free_port
from training.generator import (
    FewShotPrompt,
    GeneratorError,
    SampleRequest,
    SamplingParams,
    build_backend,
    split_solution,
)

PROBLEMS = ["What is $2 + 3 \\cdot 4$?", "How many positive divisors does 12 have?"]


def _backend(base_url: str, **options):
    config = {"backend": "openai", "base_url": base_url, "model": "smollm2", **options}
    return build_backend("remote", config, FewShotPrompt())


def test_llama_cpp_chat_samples_are_reproducible_by_seed(llama_server):
    backend = _backend(llama_server, endpoint="chat")
    assert backend.check() == ["smollm2"]
    params = SamplingParams(temperature=0.8, max_new_tokens=12)
    first = backend.sample([SampleRequest(p, (1, 2)) for p in PROBLEMS], params)
    # llama.cpp ignores `n`: the backend asked for the second sample of each problem separately.
    assert [len(c) for c in first] == [2, 2]
    assert all(c.text.strip() and c.completion_tokens > 0 for cs in first for c in cs)
    again = backend.sample([SampleRequest(PROBLEMS[1], (2, 1))], params)
    assert [c.text for c in again[0]] == [first[1][1].text, first[1][0].text]
    assert first[0][0].text != first[0][1].text


def test_llama_cpp_completions_with_forced_answers(llama_server):
    backend = _backend(llama_server, endpoint="completions")
    # Stop at the first full stop: every sample ends on its own before writing a marker.
    params = SamplingParams(max_new_tokens=40, stop=(".",), force_answer=True)
    completions = backend.sample([SampleRequest(PROBLEMS[0], (1, 2, 3))], params)[0]
    forced = [c for c in completions if c.extra.get("forced_answer")]
    assert forced, [c.text for c in completions]
    for completion in forced:
        parsed = split_solution(completion.text)
        assert parsed.answer and parsed.reasoning_steps >= 1


def _echo_reply(problem: str, seed: int, index: int, body: dict) -> str:
    return f"Sample {seed}/{index}.\n# Answer\n\n{seed % 7}"


def test_n_is_used_and_a_server_ignoring_it_gets_one_request_per_missing_sample():
    params = SamplingParams(temperature=0.5, top_p=0.9, max_new_tokens=30, stop=("END",))
    with ScriptedServer(_echo_reply) as server:
        backend = _backend(
            server.base_url, endpoint="completions", max_n=2, api_key="sk-test", concurrency=1
        )
        out = backend.sample([SampleRequest("Q", (10, 11, 12))], params)[0]
        assert [r["n"] for r in server.requests] == [2, 1]
        assert [r["seed"] for r in server.requests] == [10, 12]
        first = server.requests[0]
        assert first["_path"] == "/v1/completions" and first["_auth"] == "Bearer sk-test"
        assert (first["temperature"], first["top_p"], first["max_tokens"]) == (0.5, 0.9, 30)
        assert first["stop"] == ["END", "\nProblem:"] and first["model"] == "smollm2"
        assert first["prompt"].endswith("Problem: Q\nSolution:\n")
        assert [c.text.split(".")[0] for c in out] == ["Sample 10/0", "Sample 10/1", "Sample 12/0"]
    with ScriptedServer(_echo_reply, honour_n=False) as server:
        backend = _backend(server.base_url, endpoint="chat", max_n=2)
        seen: list[float] = []
        out = backend.sample([SampleRequest("Q", (10, 11, 12))], params, seen.append)[0]
        assert seen == [0.5, 1.0]
        assert sorted((r["n"], r["seed"]) for r in server.requests) == [(1, 11), (1, 12), (2, 10)]
        assert [c.text.split(".")[0] for c in out] == ["Sample 10/0", "Sample 11/0", "Sample 12/0"]
        assert server.requests[0]["messages"][-1] == {"role": "user", "content": "Q"}


def test_forced_answer_continues_the_sample_after_the_marker():
    def reply(problem, seed, index, body):
        if problem.endswith("# Answer\n\n"):
            return " 42 \nand more"
        return "We multiply 6 by 7."

    with ScriptedServer(reply) as server:
        backend = _backend(server.base_url, endpoint="completions")
        out = backend.sample([SampleRequest("Q", (1,))], SamplingParams(force_answer=True))[0][0]
        assert out.text == "We multiply 6 by 7.\n\n# Answer\n\n42"
        assert out.extra == {"forced_answer": True}
        forced_request = server.requests[1]
        assert forced_request["prompt"].endswith("Solution:\nWe multiply 6 by 7.\n\n# Answer\n\n")
        assert forced_request["stop"] == ["\n"]


def test_busy_or_failing_servers_are_retried_then_reported():
    params = SamplingParams(max_new_tokens=5)
    with ScriptedServer(_echo_reply) as server:
        backend = _backend(server.base_url, max_retries=2, retry_backoff=0.01)
        server.failures = [503, 429]
        out = backend.sample([SampleRequest("Q", (3,))], params)
        assert out[0][0].text.startswith("Sample 3/0") and len(server.requests) == 3

        server.failures = [502, 502, 502]
        with pytest.raises(GeneratorError) as failed:
            backend.sample([SampleRequest("Q", (3,))], params)
        assert "answered HTTP 502: scripted failure 502 (3 attempts)" in str(failed.value)

        # A refused request is not retried: the server's own message is shown.
        server.requests.clear()
        server.failures = [400]
        with pytest.raises(GeneratorError, match="answered HTTP 400: scripted failure 400"):
            backend.sample([SampleRequest("Q", (3,))], params)
        assert len(server.requests) == 1


def test_unreachable_and_silent_servers_give_clear_errors():
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    backend = _backend(nobody, max_retries=1, retry_backoff=0.01)
    with pytest.raises(GeneratorError, match=r"generator remote: cannot reach .*\(2 attempts\)"):
        backend.sample([SampleRequest("Q", (1,))], SamplingParams())
    with ScriptedServer(_echo_reply) as server:
        server.delay = 2.0
        backend = _backend(server.base_url, timeout=0.3, max_retries=0)
        with pytest.raises(GeneratorError, match=r"no answer from .* within 0.3 s \(1 attempt\)"):
            backend.sample([SampleRequest("Q", (1,))], SamplingParams())


def test_configuration_errors_name_the_setting():
    with pytest.raises(GeneratorError, match="base_url must be an http"):
        _backend("127.0.0.1:8000")
    with pytest.raises(GeneratorError, match="endpoint must be 'chat' or 'completions'"):
        _backend("http://x/v1", endpoint="embeddings")
    with pytest.raises(
        GeneratorError, match="missing 1 required keyword-only argument: 'base_url'"
    ):
        build_backend("remote", {"backend": "openai", "model": "m"}, FewShotPrompt())
