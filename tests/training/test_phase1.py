"""Phase-1 (interactive) labeling through its API, against real Postgres and a generator server
speaking the OpenAI completions protocol (scripted, so each step's candidates are known and
every sampling request is counted).

A trajectory is labeled end to end, exported, compared field by field with the real PRM800K
phase-1 lines, imported back and compared with the labeling it came from.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.db.models import Count, Q
from django.utils import timezone

from labeling import services
from labeling.exports import iter_prm800k_lines
from labeling.imports.prm800k import import_prm800k
from labeling.models import (
    Assignment,
    Labeling,
    LabelingTask,
    Problem,
    TrajectoryCandidates,
)
from tests.generator.conftest import ScriptedServer
from tests.labeling.factories import client_for, make_labeler
from training.phase1 import services as phase1

pytestmark = pytest.mark.django_db(transaction=True)

K = 3
FINAL = "# Answer: 5"


def _after(prompt: str) -> str:
    return prompt.rsplit("Solution:\n", 1)[-1]


def scripted_reply(problem, seed, index, body):
    """Steps 1 and 2: K ordinary candidates; from step 3 on, candidate 0 holds the answer."""
    done = _after(body["prompt"]).count("\n")
    if done >= 2 and index == 0:
        return FINAL
    return f"Step {done + 1}, idea {index}: $2 + 3 = {5 + index}$."


@pytest.fixture
def generator(settings):
    with ScriptedServer(scripted_reply) as server:
        settings.STEPWISE_GENERATORS = {
            **settings.STEPWISE_GENERATORS,
            "scripted": {
                "backend": "openai",
                "base_url": server.base_url,
                "model": "scripted",
                "endpoint": "completions",
                "max_n": 8,
            },
        }
        yield server


def make_round(problems: int = 1, *, required: int = 1, k: int = K):
    admin = make_labeler(role="admin")
    ids = [
        Problem.objects.create(
            text=f"What is $2 + 3$? (variant {i} {timezone.now().timestamp()})",
            reference_answer="5",
        ).pk
        for i in range(problems)
    ]
    response = client_for(admin).post(
        "/api/labeling/phase1/rounds/",
        {"problem_ids": ids, "generator": "scripted", "k": k, "labelings_per_problem": required},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def step(client, assignment_id: int, **body):
    body.setdefault("total_time_ms", 1000)
    body.setdefault("human_flagged", False)
    return client.post(
        f"/api/labeling/phase1/assignments/{assignment_id}/step/", body, format="json"
    )


def test_round_creation_checks_fields_and_is_for_admins(generator):
    admin, labeler = make_labeler(role="admin"), make_labeler()
    url = "/api/labeling/phase1/rounds/"
    body = {"problem_ids": [10**9], "generator": "nope", "k": 0, "top_p": 0}
    assert client_for(labeler).post(url, body, format="json").status_code == 403
    response = client_for(admin).post(url, body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) >= {"problem_ids", "generator", "k", "top_p"}
    assert "No such problems" in errors["problem_ids"][0]
    assert not LabelingTask.objects.exists()
    response = client_for(admin).post(url, {"generator": "scripted"}, format="json")
    assert response.status_code == 400 and "limit" in response.json()["problem_ids"][0]

    problem = Problem.objects.create(text="What is 1+1?", reference_answer="2")
    chat = {"backend": "openai", "base_url": generator.base_url, "model": "m"}
    from django.conf import settings

    settings.STEPWISE_GENERATORS = {**settings.STEPWISE_GENERATORS, "chatty": chat}
    response = client_for(admin).post(
        url, {"problem_ids": [problem.pk], "generator": "chatty"}, format="json"
    )
    assert response.status_code == 400
    assert "completions" in response.json()["generator"][0]


def test_a_whole_trajectory_exports_as_a_phase1_line_and_imports_back(
    generator, shared_data, tmp_path
):
    make_round()
    alice = make_labeler()
    client = client_for(alice)

    claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    current = claimed["current"]
    assert current["position"] == 0 and len(current["candidates"]) == K
    assert "generation" not in claimed and "strategy_params" not in json.dumps(claimed)
    requests_after_claim = len(generator.requests)

    # Reload: the same candidates, from storage (no new sampling request).
    reloaded = client.get(f"/api/labeling/phase1/assignments/{claimed['id']}/").json()
    assert reloaded["assignment"]["current"] == current
    assert len(generator.requests) == requests_after_claim

    # Choosing before every candidate is rated is refused, field by field.
    response = step(
        client, claimed["id"], position=0, ratings=[1, None, 0], flags=[False] * K, chosen=0
    )
    assert response.status_code == 400 and "ratings" in response.json()
    response = step(client, claimed["id"], position=0, ratings=[1, -1, 0], flags=[False] * K)
    assert response.status_code == 400 and "chosen" in response.json()

    # Step 1: choose candidate 1. Step 2: write a step. Step 3: choose the final answer.
    first = step(
        client, claimed["id"], position=0, ratings=[1, 1, 0], flags=[False, True, False], chosen=1
    ).json()
    assert first["finished"] is False
    assert first["assignment"]["steps"][0]["text"] == current["candidates"][1]["text"]
    # A retried step changes nothing; a different decision for a decided step is refused.
    again = step(
        client, claimed["id"], position=0, ratings=[1, 1, 0], flags=[False, True, False], chosen=1
    )
    assert again.status_code == 200
    assert again.json()["assignment"]["current"] == first["assignment"]["current"]
    changed = step(
        client, claimed["id"], position=0, ratings=[1, 1, 0], flags=[False] * K, chosen=2
    )
    assert changed.status_code == 400

    human = "Adding, $2 + 3 = 5$."
    second = step(
        client, claimed["id"], position=1, ratings=[-1, 0, -1], flags=[False] * K, human_text=human
    ).json()
    assert second["assignment"]["steps"][1] == {
        "position": 1,
        "text": human,
        "written": True,
        "chosen": None,
        "candidates": second["assignment"]["steps"][1]["candidates"],
    }
    third = second["assignment"]["current"]
    assert third["candidates"][0]["ends_solution"] is True
    done = step(client, claimed["id"], position=2, ratings=[1, 0, 0], flags=[False] * K, chosen=0)
    body = done.json()
    assert body["finished"] is True and body["assignment"]["finish_reason"] == "solution"

    labeling = Labeling.objects.get(labeler=alice)
    assert labeling.solution.is_pre_generated is False
    assert labeling.solution.grade == "correct" and labeling.solution.final_answer == "5"
    assert LabelingTask.objects.get().state == LabelingTask.State.DONE
    assert Assignment.objects.get(labeler=alice).state == Assignment.State.SUBMITTED

    # The export: one line shaped exactly like the real phase-1 lines.
    [line] = list(iter_prm800k_lines())
    exported = json.loads(line)
    real = [
        json.loads(raw)
        for raw in (shared_data / "prm800k_sample_openr.jsonl").read_text().splitlines()
        if json.loads(raw)["generation"] is None
    ]
    assert real, "the shared sample has phase-1 lines"
    assert_same_shape(exported, real[0])
    steps = exported["label"]["steps"]
    assert [s["chosen_completion"] for s in steps] == [1, None, 0]
    assert steps[1]["human_completion"] == {
        "text": human,
        "rating": None,
        "source": "human",
        "flagged": False,
    }
    assert [c["rating"] for c in steps[0]["completions"]] == [1, 1, 0]
    assert [c["flagged"] for c in steps[0]["completions"]] == [False, True, False]
    assert steps[2]["completions"][0]["text"] == "# Answer\n\n5"
    assert exported["generation"] is None and exported["label"]["finish_reason"] == "solution"
    assert exported["label"]["total_time"] == 1000

    # Import it back: the same labeling, and exporting that gives the same line.
    path = tmp_path / "phase1.jsonl"
    path.write_text(line + "\n")
    import_prm800k(path)
    imported = Labeling.objects.exclude(pk=labeling.pk).get()
    assert imported.solution_id == labeling.solution_id  # same trajectory, found by fingerprint
    assert labeling_rows(imported) == labeling_rows(labeling)
    lines = list(iter_prm800k_lines())
    assert len(lines) == 2 and lines[1] == line


def labeling_rows(labeling: Labeling) -> list:
    return [
        (
            s.position,
            s.completions_null,
            s.chosen_completion,
            s.has_human_completion,
            s.human_completion_text,
            s.human_completion_rating,
            s.human_completion_source,
            s.human_completion_flagged,
            [(c.position, c.text, c.rating, c.flagged) for c in s.completions.order_by("position")],
        )
        for s in labeling.steps.order_by("position")
    ] + [labeling.finish_reason, labeling.total_time_ms, labeling.timestamp]


def assert_same_shape(ours, real, path="line"):
    """Same keys in the same order and the same JSON types, recursively (nulls match anything
    that may be null in the real data)."""
    if isinstance(real, dict):
        assert isinstance(ours, dict), path
        assert list(ours) == list(real), f"{path}: {list(ours)} != {list(real)}"
        for key in real:
            if real[key] is None or ours[key] is None:
                continue
            assert_same_shape(ours[key], real[key], f"{path}.{key}")
    elif isinstance(real, list):
        assert isinstance(ours, list), path
        if real and ours:
            for item in ours:
                assert_same_shape(item, real[0], f"{path}[]")
    else:
        assert type(ours) is type(real), f"{path}: {type(ours)} != {type(real)}"


def test_human_completion_and_step_keys_match_real_lines(shared_data):
    """The real lines' step and human_completion keys, pinned (what the export must write)."""
    for raw in (shared_data / "prm800k_sample_openr.jsonl").read_text().splitlines():
        line = json.loads(raw)
        if line["generation"] is not None:
            continue
        assert list(line["question"]) == ["problem", "ground_truth_answer"]
        for s in line["label"]["steps"]:
            assert list(s) == ["completions", "human_completion", "chosen_completion"]
            if s["human_completion"] is not None:
                assert list(s["human_completion"]) == ["text", "rating", "source", "flagged"]
                assert s["human_completion"]["source"] == "human"


def test_prefetch_samples_the_next_step_once(generator):
    make_round()
    client = client_for(make_labeler())
    claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    url = f"/api/labeling/phase1/assignments/{claimed['id']}/prefetch/"
    prefetched = client.post(url, {"position": 0, "candidate": 2}, format="json").json()
    assert prefetched == {"ready": True, "position": 1, "elapsed_ms": prefetched["elapsed_ms"]}
    # Asked twice (two tabs, a retry): sampled once.
    before = len(generator.requests)
    client.post(url, {"position": 0, "candidate": 2}, format="json")
    assert len(generator.requests) == before
    chosen = step(client, claimed["id"], position=0, ratings=[0, 0, 1], flags=[False] * K, chosen=2)
    assert chosen.status_code == 200
    assert len(generator.requests) == before  # the choice was served from the prefetch
    assert chosen.json()["assignment"]["current"]["position"] == 1
    assert TrajectoryCandidates.objects.filter(prefetched=True).count() == 1
    bad = client.post(url, {"position": 0, "candidate": 0}, format="json")
    assert bad.status_code == 400 and "position" in bad.json()
    # At most two guesses sampled per step, whatever the client asks for.
    url_now = {"position": 1}
    answers = [
        client.post(url, {**url_now, "candidate": c}, format="json").json()["ready"]
        for c in range(K)
    ]
    assert answers == [True, True, False]
    assert TrajectoryCandidates.objects.filter(position=2, prefetched=True).count() == 2


def test_give_up_keeps_what_was_rated_and_bad_problem_needs_a_reason(generator):
    make_round(2)
    bob = make_labeler()
    client = client_for(bob)
    claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    step(client, claimed["id"], position=0, ratings=[1, 0, 0], flags=[False] * K, chosen=0)
    end = f"/api/labeling/phase1/assignments/{claimed['id']}/end/"
    body = {
        "finish_reason": "give_up",
        "reason": "",
        "position": 1,
        "ratings": [-1, None, 0],
        "flags": [True, False, False],
        "total_time_ms": 5,
    }
    assert "reason" in client.post(end, body, format="json").json()
    body["reason"] = "stuck"
    first = client.post(end, body, format="json")
    assert first.status_code == 201
    assert client.post(end, body, format="json").status_code == 200  # a retry: the same labeling
    [line] = [json.loads(x) for x in iter_prm800k_lines()]
    assert line["label"]["finish_reason"] == "give_up"
    assert [c["rating"] for c in line["label"]["steps"][1]["completions"]] == [-1, None, 0]
    assert line["label"]["steps"][1]["chosen_completion"] is None

    # Nothing rated where they stopped: `completions: null`, as PRM800K writes it.
    second = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    response = client.post(
        f"/api/labeling/phase1/assignments/{second['id']}/end/",
        {**body, "finish_reason": "bad_problem", "position": 0, "ratings": [], "flags": []},
        format="json",
    )
    assert response.status_code == 201
    last = json.loads(list(iter_prm800k_lines())[-1])
    assert last["label"]["steps"] == [
        {"completions": None, "human_completion": None, "chosen_completion": None}
    ]


def test_phase1_and_phase2_work_never_mix(generator):
    from tests.labeling.factories import make_task

    make_round()
    phase2_task = make_task()
    carol = make_labeler()
    client = client_for(carol)
    # Phase 2's claim serves the phase-2 task only.
    claimed = client.post("/api/labeling/claim/").json()["assignment"]
    assert Assignment.objects.get(pk=claimed["id"]).task_id == phase2_task.pk
    # With a phase-2 lease open, the interactive page is told to send them back.
    response = client.post("/api/labeling/phase1/claim/")
    assert response.status_code == 423 and response.json()["code"] == "other_mode_open"
    client.post(
        f"/api/labeling/assignments/{claimed['id']}/give-up/",
        {"reason": "later", "total_time_ms": 1},
        format="json",
    )
    # Now the phase-1 task; while it is open, phase 2's claim answers 423 and its submit 400.
    p1 = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    response = client.post("/api/labeling/claim/")
    assert response.status_code == 423 and response.json()["code"] == "other_mode_open"
    response = client.post(
        f"/api/labeling/assignments/{p1['id']}/give-up/",
        {"reason": "x", "total_time_ms": 1},
        format="json",
    )
    assert response.status_code == 400 and "assignment" in response.json()
    assert not Labeling.objects.filter(labeler=carol, task__generation__strategy="phase1").exists()


def test_someone_elses_or_lapsed_lease(generator):
    make_round()
    dave, erin = make_labeler(), make_labeler()
    claimed = client_for(dave).post("/api/labeling/phase1/claim/").json()["assignment"]
    url = f"/api/labeling/phase1/assignments/{claimed['id']}/"
    assert client_for(erin).get(url).status_code == 403
    Assignment.objects.filter(pk=claimed["id"]).update(lease_expires_at=timezone.now())
    response = step(
        client_for(dave), claimed["id"], position=0, ratings=[1] * K, flags=[False] * K, chosen=0
    )
    assert response.status_code == 409 and response.json()["code"] == "lease_lost"


def test_undo_shows_the_same_candidates_again(generator):
    make_round()
    client = client_for(make_labeler())
    claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    step(client, claimed["id"], position=0, ratings=[1, 1, 1], flags=[False] * K, chosen=0)
    before = len(generator.requests)
    undone = client.post(
        f"/api/labeling/phase1/assignments/{claimed['id']}/undo/", {"position": 0}, format="json"
    ).json()["assignment"]
    assert undone["steps"] == [] and undone["current"] == claimed["current"]
    assert len(generator.requests) == before


def test_training_data_takes_unchosen_candidates_as_branches(generator):
    from training.datasets import build_training_data

    make_round()
    client = client_for(make_labeler())
    claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    aid = claimed["id"]
    step(client, aid, position=0, ratings=[1, -1, 0], flags=[False] * K, chosen=0)
    step(client, aid, position=1, ratings=[1, 1, 1], flags=[False] * K, chosen=0)
    step(client, aid, position=2, ratings=[1, 0, 0], flags=[False] * K, chosen=0)
    data = build_training_data(heldout_fraction=0.0)
    examples = data.train
    # The trajectory itself is rated on every step; a branch only on its last one.
    main = [e for e in examples if len(e.steps) == 3 and None not in e.ratings]
    assert len(main) == 1 and main[0].ratings == [1, 1, 1] and len(main[0].steps) == 3
    # Unchosen candidates: 2 per step, each a branch rated on its last step.
    branches = [e for e in examples if e is not main[0]]
    assert all(r is None for e in branches for r in e.ratings[:-1])
    assert len(branches) == 6
    assert Counter(e.ratings[-1] for e in branches) == Counter({-1: 1, 0: 3, 1: 2})


def test_concurrent_claims_keep_the_leasing_invariants(generator):
    """Phase-1 tasks through the same leases: 12 labelers, 4 problems needing 2 labelings."""
    make_round(4, required=2)
    labelers = [make_labeler() for _ in range(12)]
    start = threading.Barrier(len(labelers))
    errors: list[BaseException] = []

    def work(labeler) -> None:
        try:
            start.wait(timeout=60)
            for _ in range(50):
                assignment = services.assignment_claim(labeler=labeler, phase1=True)
                if assignment is None:
                    return
                phase1.trajectory_end(
                    assignment_id=assignment.pk,
                    labeler=labeler,
                    finish_reason="give_up",
                    reason="done",
                    position=0,
                    ratings=[],
                    flags=[],
                    total_time_ms=1,
                )
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(labeler,)) for labeler in labelers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    connections.close_all()
    assert not errors, errors[:3]
    live = Q(assignments__state__in=["active", "submitted"])
    counts = LabelingTask.objects.annotate(n=Count("assignments", filter=live)).values_list(
        "n", flat=True
    )
    assert sorted(counts) == [2, 2, 2, 2]
    assert set(LabelingTask.objects.values_list("state", flat=True)) == {"done"}
    per_labeler = Counter(Labeling.objects.values_list("labeler_id", "task_id"))
    assert max(per_labeler.values()) == 1


def test_create_phase1_round_command(generator):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from labeling.models import Generation

    ids = [Problem.objects.create(text=f"Problem {i}", reference_answer="1").pk for i in range(3)]
    with pytest.raises(CommandError, match="generator"):
        call_command("create_phase1_round", "--limit", "2", "--generator", "nope")
    call_command(
        "create_phase1_round", "--problem-ids", f"{ids[0]},{ids[2]}", "--generator", "scripted",
        "--k", "5", "--labelings", "2",
    )  # fmt: skip
    generation = Generation.objects.get(strategy="phase1")
    assert generation.strategy_params["k"] == 5 and generation.labelings_per_task == 2
    tasks = LabelingTask.objects.filter(generation=generation)
    assert sorted(t.solution.problem_id for t in tasks) == [ids[0], ids[2]]
    assert {t.labelings_required for t in tasks} == {2}


def test_a_generator_that_wants_blank_lines_costs_one_pass_once_learned(settings):
    """A model that puts a blank line between steps: the round learns it after one step and
    starts later samplings after a blank line (one backend call instead of two)."""

    def reply(problem, seed, index, body):
        answer = _after(body["prompt"])
        steps = [line for line in answer.split("\n") if line.strip()]
        if steps and not answer.endswith("\n\n"):
            return ""  # wants a blank line first
        return f"Line {len(steps) + 1}.{index}"

    with ScriptedServer(reply) as server:
        settings.STEPWISE_GENERATORS = {
            **settings.STEPWISE_GENERATORS,
            "scripted": {
                "backend": "openai",
                "base_url": server.base_url,
                "model": "scripted",
                "endpoint": "completions",
                "max_n": 8,
            },
        }
        make_round()
        client = client_for(make_labeler())
        claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
        first = step(
            client, claimed["id"], position=0, ratings=[1] * K, flags=[False] * K, chosen=0
        )
        texts = [c["text"] for c in first.json()["assignment"]["current"]["candidates"]]
        assert len(texts) == K and all(t.startswith("Line 2.") for t in texts)
        step(client, claimed["id"], position=1, ratings=[1] * K, flags=[False] * K, chosen=0)
    sets = {s.position: s.sampling for s in TrajectoryCandidates.objects.all()}
    assert sets[1]["passes"]["calls"] == 2 and sets[1]["lead"] == ""
    assert sets[2]["passes"] == {"calls": 1, "blank": 0, "answer": 0} and sets[2]["lead"] == "\n"
