"""Sampling runs end to end on the database: splitting, grading, de-duplication, the counts of
what was kept out, idempotent re-runs, resumption, and the generate_solutions command.

The exact counts come from a scripted OpenAI-protocol server (the tests choose each answer);
the same path then runs against the real llama.cpp server on SmolLM2.
"""

from __future__ import annotations

import json
import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from labeling.imports.common import text_md5
from labeling.models import Problem, Solution
from tests.generator.conftest import ScriptedServer
from training import sampling
from training.generator import sample_seed, split_solution
from training.models import SamplingRun

pytestmark = pytest.mark.django_db

SAME = "Always the same: what is $6 \\cdot 7$?"
EMPTY = "Nothing to say about 5?"
RAMBLE = "Ramble about the number 5?"
SEEDED = "Seeded: what is the remainder of 10 divided by 3?"
ANSWER_ONLY = "Answer only: what is 1 + 2?"
GSM8K = "Pens: 3 boxes hold 4 pens each. How many pens?"
NO_REFERENCE = "Open question: name a prime."
CUT = "Cut off: what is 2 + 2?"


def _reply(problem: str, seed: int, index: int, body: dict) -> str:
    if problem.endswith("# Answer\n\n"):  # a forced answer
        return "5\n"
    if problem == SAME:
        return "Six sevens make forty-two.\n$6 \\cdot 7 = 42$.\n\n# Answer\n\n42"
    if problem == EMPTY:
        return "  \n"
    if problem == RAMBLE:
        return "Five is a number.\nIt is odd."
    if problem == SEEDED:
        value = (seed + index) % 3
        return f"Take {seed}/{index}.\nIt leaves {value}.\n# Answer: {value}"
    if problem == ANSWER_ONLY:
        return "# Answer\n\n3"
    if problem == GSM8K:
        return "Three boxes of four pens.\n3 * 4 = 12\n#### 12"
    if problem == NO_REFERENCE:
        return "Two is prime.\n# Answer\n\n2"
    if problem == CUT:
        return "We add two and two, which", "length"
    raise AssertionError(f"unexpected problem {problem!r}")


@pytest.fixture
def scripted(settings):
    with ScriptedServer(_reply) as server:
        base = {"backend": "openai", "base_url": server.base_url, "model": "scripted"}
        settings.STEPWISE_GENERATORS = {
            "scripted": {**base, "endpoint": "completions", "max_retries": 0},
            "scripted-forced": {**base, "endpoint": "completions", "force_answer": True},
            "scripted-chat": {**base, "endpoint": "chat", "max_retries": 0},
        }
        settings.STEPWISE_GENERATOR_DEFAULT = "scripted"
        yield server


@pytest.fixture
def problems() -> dict[str, Problem]:
    references = {
        SAME: "42",
        EMPTY: "5",
        RAMBLE: "5",
        SEEDED: "1",
        ANSWER_ONLY: "3",
        GSM8K: "12",
        NO_REFERENCE: "",
        CUT: "4",
    }
    return {
        text: Problem.objects.create(text=text, reference_answer=answer, split="test")
        for text, answer in references.items()
    }


def _run(**request) -> SamplingRun:
    run, created = sampling.sampling_run_start(enqueue=False, **request)
    assert created
    done = sampling.sampling_run_execute(run_id=run.id)
    assert done is not None
    done.refresh_from_db()
    assert done.state == "succeeded", done.error
    return done


def _seeded_grades(samples: int) -> dict[str, int]:
    """The scripted server answers (seed of the first sample + choice index) % 3; 1 is right."""
    first = sample_seed(0, text_md5(SEEDED), 0)
    correct = sum((first + index) % 3 == 1 for index in range(samples))
    return {"correct": correct, "wrong": samples - correct}


def test_samples_are_split_graded_deduplicated_and_counted(scripted, problems):
    run = _run(samples=3, generator="scripted", temperature=0.5, max_new_tokens=64)
    seeded = _seeded_grades(3)
    assert run.counts == {
        "requested": 24,
        # SAME once (2 duplicates), SEEDED 3 times, GSM8K once (2 duplicates), NO_REFERENCE once.
        "kept": 6,
        "duplicates": 6,
        "no_answer": 6,  # RAMBLE, and CUT (cut at the token limit)
        "empty": 6,  # EMPTY and ANSWER_ONLY
        "already_sampled": 0,
        "correct": 2 + seeded["correct"],
        "wrong": seeded["wrong"],
        "ungraded": 1,
        "truncated": 3,
    }
    assert run.cursor == 8 and run.progress == 1.0 and run.attempts == 1
    assert "problems 8/8: kept 6" in run.log
    stored = Solution.objects.filter(source="generated")
    assert stored.count() == 6
    assert not stored.filter(problem__in=[problems[EMPTY], problems[RAMBLE], problems[ANSWER_ONLY]])
    same = stored.get(problem=problems[SAME])
    assert [s.text for s in same.steps.order_by("position")] == [
        "Six sevens make forty-two.",
        "$6 \\cdot 7 = 42$.\n\n# Answer\n\n42",
    ]
    assert (same.final_answer, same.grade, same.num_steps) == ("42", "correct", 2)
    assert (same.generator, same.sample_index) == ("scripted", 0)
    assert same.sampling_key == run.params["sampling_key"]
    params = same.generation_params
    assert params["prompt_sha256"] == run.params["prompt_sha256"]
    assert (params["temperature"], params["max_new_tokens"], params["seed"]) == (0.5, 64, 0)
    assert params["model"] == "scripted" and params["backend"] == "openai"
    assert params["sample_seed"] == sample_seed(0, text_md5(SAME), 0)
    assert params["sampling_run"] == run.id
    gsm8k = stored.get(problem=problems[GSM8K])
    assert (gsm8k.final_answer, gsm8k.grade) == ("12", "correct")
    assert stored.get(problem=problems[NO_REFERENCE]).grade == "ungraded"
    # What the server was asked: one request per problem, n = 3, the run's parameters.
    assert {r["n"] for r in scripted.requests} == {3} and len(scripted.requests) == 8
    assert {r["temperature"] for r in scripted.requests} == {0.5}


def test_the_same_request_again_creates_nothing(scripted, problems):
    run = _run(samples=3, generator="scripted")
    before = set(Solution.objects.values_list("id", flat=True))
    requests = len(scripted.requests)
    again, created = sampling.sampling_run_start(samples=3, generator="scripted", enqueue=False)
    assert (again.id, created) == (run.id, False)
    assert sampling.sampling_run_execute(run_id=run.id) is None  # finished: nothing to do
    assert set(Solution.objects.values_list("id", flat=True)) == before
    assert len(scripted.requests) == requests

    # Overlapping: one more sample per problem draws only index 3 where 0..2 were stored.
    more = _run(samples=4, generator="scripted")
    assert more.counts["requested"] == 32
    assert more.counts["already_sampled"] == 6  # the six solutions stored before
    assert more.counts["kept"] == 1  # SEEDED's fourth sample; the rest repeat what is stored
    assert Solution.objects.count() == len(before) + 1
    assert sum(more.counts[k] for k in ("kept", "duplicates", "no_answer", "empty")) == 26
    # A different seed is a different request: new samples.
    other = _run(samples=1, generator="scripted", seed=5, problem_ids=[problems[SEEDED].id])
    assert other.counts["kept"] == 1 and other.counts["already_sampled"] == 0


def test_forced_answers_give_rambling_samples_a_final_answer(scripted, problems):
    run = _run(samples=1, generator="scripted-forced", problem_ids=[problems[RAMBLE].id])
    assert run.counts["kept"] == 1 and run.counts["no_answer"] == 0
    solution = Solution.objects.get(problem=problems[RAMBLE])
    assert [s.text for s in solution.steps.order_by("position")] == [
        "Five is a number.",
        "It is odd.\n\n# Answer\n\n5",
    ]
    assert solution.grade == "correct" and solution.generation_params["forced_answer"] is True


def test_force_answer_with_a_chat_endpoint_is_refused(settings, scripted, problems):
    settings.STEPWISE_GENERATORS["chat-forced"] = {
        "backend": "openai",
        "base_url": scripted.base_url,
        "model": "m",
        "force_answer": True,
    }
    with pytest.raises(ValidationError) as refused:
        sampling.sampling_run_start(samples=1, generator="chat-forced", enqueue=False)
    assert "completions endpoint" in refused.value.message_dict["generator"][0]
    assert not SamplingRun.objects.exists()


def test_bad_requests_name_the_field_and_write_nothing(scripted, problems, tmp_path, settings):
    cases = [
        ({"samples": 0}, "samples"),
        ({"samples": 2, "generator": "nope"}, "generator"),
        ({"samples": 2, "temperature": 3.0}, "temperature"),
        ({"samples": 2, "top_p": 0.0}, "top_p"),
        ({"samples": 2, "max_new_tokens": 0}, "max_new_tokens"),
        ({"samples": 2, "seed": -1}, "seed"),
        ({"samples": 2, "split": "train"}, "split"),
        ({"samples": 2, "problem_ids": [10**9]}, "problem_ids"),
        ({"samples": 2, "limit": 0}, "limit"),
        ({"samples": 2, "prompt": {"examples": [{"problem": "p"}]}}, "prompt"),
        ({"samples": 2, "problems_file": str(tmp_path / "none.jsonl")}, "problems_file"),
    ]
    for request, field in cases:
        with pytest.raises(ValidationError) as error:
            sampling.sampling_run_start(enqueue=False, **request)
        assert field in error.value.message_dict, (request, error.value)
    settings.STEPWISE_GENERATORS["gone"] = {"backend": "local", "model": str(tmp_path / "m")}
    with pytest.raises(ValidationError, match="is not a registered base model"):
        sampling.sampling_run_start(samples=1, generator="gone", enqueue=False)
    assert not SamplingRun.objects.exists() and not Solution.objects.exists()


def test_a_failing_server_fails_the_run_and_a_new_request_goes_on_from_what_was_stored(
    scripted, problems, settings
):
    settings.STEPWISE_GENERATORS["scripted"]["chunk_rows"] = 2  # one problem per chunk
    ids = [problems[SAME].id, problems[SEEDED].id, problems[GSM8K].id]
    scripted.fail_from = 1  # the first chunk is answered, the second refused
    run, _ = sampling.sampling_run_start(samples=2, problem_ids=ids, enqueue=False)
    result = sampling.sampling_run_execute(run_id=run.id)
    assert result.state == "failed" and result.cursor == 1
    assert "answered HTTP 400: scripted failure 400" in result.error
    assert "Traceback" not in result.error  # a server's refusal is reported as it is
    assert Solution.objects.count() == 1
    scripted.fail_from = None
    again = _run(samples=2, problem_ids=ids)
    assert again.id != run.id
    assert again.counts["already_sampled"] == 1 and again.counts["requested"] == 6
    assert Solution.objects.filter(problem=problems[SEEDED]).count() == 2


def test_a_lost_attempt_is_resumed_from_its_cursor(scripted, problems):
    ids = [problems[SAME].id, problems[GSM8K].id]
    run, _ = sampling.sampling_run_start(samples=2, problem_ids=ids, enqueue=False)
    # As if a worker on this host stored the first problem and died.
    SamplingRun.objects.filter(id=run.id).update(
        state="running",
        attempts=1,
        cursor=1,
        worker=f"{socket.gethostname()}:999999999",
        heartbeat_at=timezone.now(),
    )
    done = sampling.sampling_run_execute(run_id=run.id)
    assert done.state == "succeeded" and done.attempts == 2
    assert "attempt 1 lost" in done.log and "from problem 2 of 2" in done.log
    assert done.counts["requested"] == 2  # only the second problem was left
    assert list(Solution.objects.values_list("problem_id", flat=True)) == [problems[GSM8K].id]


def test_generate_solutions_command_imports_a_problems_file(scripted, tmp_path, capsys):
    path = tmp_path / "problems.jsonl"
    records = [
        {"problem": SAME, "answer": "42", "unique_id": "test/algebra/1.json"},
        {"problem": GSM8K, "answer": "12", "unique_id": "test/prealgebra/2.json"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    call_command("generate_solutions", "--samples", "2", "--problems-file", str(path))
    out = capsys.readouterr().out
    assert "2 samples for each of 2 problems with scripted" in out
    assert "requested 4: kept 2 (correct 2, wrong 0, ungraded 0); duplicates 2" in out
    assert Problem.objects.filter(source_id__startswith="test/").count() == 2
    call_command("generate_solutions", "--samples", "2", "--problems-file", str(path))
    assert "has this request already (succeeded): nothing new" in capsys.readouterr().out
    assert Solution.objects.count() == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(records[0]) + "\n" + json.dumps({"problem": "no answer"}) + "\n")
    with pytest.raises(CommandError, match="problems_file: line 2: answer"):
        call_command("generate_solutions", "--samples", "1", "--problems-file", str(bad))
    with pytest.raises(CommandError, match="generator: No generator named 'x'"):
        call_command("generate_solutions", "--samples", "1", "--generator", "x")


def test_sampling_math500_problems_from_the_real_llama_cpp_server(
    llama_server, settings, shared_data, tmp_path
):
    settings.STEPWISE_GENERATORS = {
        "llama": {
            "backend": "openai",
            "base_url": llama_server,
            "model": "smollm2",
            "endpoint": "completions",
            "force_answer": True,
        }
    }
    path = tmp_path / "math500-two.jsonl"
    path.write_text("\n".join((shared_data / "math500.jsonl").read_text().splitlines()[:2]))
    request = {"samples": 2, "generator": "llama", "problems_file": str(path), "max_new_tokens": 40}
    run = _run(**request)
    counts = run.counts
    assert counts["requested"] == 4
    assert counts["kept"] + counts["duplicates"] + counts["no_answer"] + counts["empty"] == 4
    assert counts["kept"] == counts["correct"] + counts["wrong"] + counts["ungraded"]
    for solution in Solution.objects.filter(source="generated").prefetch_related("steps"):
        steps = [s.text for s in solution.steps.all()]
        assert steps and solution.final_answer and solution.grade in ("correct", "wrong")
        assert split_solution("\n".join(steps)).reasoning_steps >= 1
    before = Solution.objects.count()
    again, created = sampling.sampling_run_start(enqueue=False, **request)
    assert not created and again.id == run.id and Solution.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_runs_at_once_store_each_sample_index_once(settings):
    import threading

    def reply(problem, seed, index, body):
        # Text depends on the request's n: the two runs' samples differ, index by index.
        return f"Run with n={body['n']}, sample {index}.\n# Answer\n\n{index}"

    with ScriptedServer(reply) as server:
        server.delay = 1.0  # both runs look for stored samples before either stores any
        settings.STEPWISE_GENERATORS = {
            "scripted": {"backend": "openai", "base_url": server.base_url, "model": "m"}
        }
        problem = Problem.objects.create(text="Overlap?", reference_answer="0")
        first, _ = sampling.sampling_run_start(samples=2, generator="scripted", enqueue=False)
        second, _ = sampling.sampling_run_start(samples=3, generator="scripted", enqueue=False)

        def execute(run_id: int) -> None:
            try:
                sampling.sampling_run_execute(run_id=run_id)
            finally:
                connection.close()  # this thread's connection

        threads = [threading.Thread(target=execute, args=(run.id,)) for run in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    runs = SamplingRun.objects.order_by("id")
    assert [r.state for r in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    stored = Solution.objects.filter(problem=problem)
    assert sorted(stored.values_list("sample_index", flat=True)) == [0, 1, 2]
    assert sum(r.counts["kept"] for r in runs) == 3
    assert sum(r.counts["already_sampled"] for r in runs) == 2


def test_the_sweep_retries_or_fails_silent_runs_and_leaves_live_ones(scripted, problems, settings):
    from datetime import timedelta

    from training.tasks import sweep_stale_runs_task

    settings.STEPWISE_TRAINING_MAX_ATTEMPTS = 2
    spent, _ = sampling.sampling_run_start(samples=1, seed=1, enqueue=False)
    live, _ = sampling.sampling_run_start(samples=1, seed=2, enqueue=False)
    lost, _ = sampling.sampling_run_start(samples=1, seed=3, enqueue=False)
    silent = timezone.now() - timedelta(hours=2)
    SamplingRun.objects.filter(id=spent.id).update(
        state="running", attempts=2, worker="elsewhere:1", heartbeat_at=silent
    )
    SamplingRun.objects.filter(id=live.id).update(
        state="running", attempts=1, worker="elsewhere:2", heartbeat_at=timezone.now()
    )
    SamplingRun.objects.filter(id=lost.id).update(
        state="running", attempts=1, worker="elsewhere:3", heartbeat_at=silent
    )
    assert sweep_stale_runs_task() == {"published": 0, "retried": 1, "failed": 1}
    for run in (spent, live, lost):
        run.refresh_from_db()
    assert spent.state == "failed" and "worker elsewhere:1 lost" in spent.error
    assert live.state == "running"
    # Attempts left: queued again, to go on from its cursor.
    assert lost.state == "queued" and "attempt 1 lost" in lost.log
