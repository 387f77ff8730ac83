"""What the workspace API serves around a task: offered alternatives, no blank steps, progress,
the next task on the submit, two tabs on one draft, and the labeler's own history."""

from __future__ import annotations

import pytest

from labeling.models import Assignment, Generation, Labeling, Step, StepAlternative
from tests.labeling.factories import client_for, make_generation, make_labeler, make_task

pytestmark = pytest.mark.django_db

CLAIM = "/api/labeling/claim/"


def claim(client) -> dict:
    response = client.post(CLAIM)
    assert response.status_code == 200, response.content
    return response.json()["assignment"]


def submit_url(assignment_id: int) -> str:
    return f"/api/labeling/assignments/{assignment_id}/submit/"


def draft_url(assignment_id: int) -> str:
    return f"/api/labeling/assignments/{assignment_id}/draft/"


def all_great(steps: int, **extra) -> dict:
    return {
        "finish_reason": "solution",
        "reason": "",
        "total_time_ms": 1000,
        "steps": [{"position": i, "rating": 1, "flagged": False} for i in range(steps)],
        **extra,
    }


def test_an_alternative_equal_to_the_step_or_blank_is_not_offered_nor_required():
    task = make_task(steps=2, alternatives={1: 3})
    step = Step.objects.get(solution=task.solution, position=1)
    # Alternative 1 repeats the step (up to whitespace), 2 is blank, 3 is a real alternative.
    StepAlternative.objects.filter(step=step, position=1).update(text="  step   1\n")
    StepAlternative.objects.filter(step=step, position=2).update(text=" \n ")
    client = client_for(make_labeler())
    assignment = claim(client)
    assert assignment["steps"][1]["alternatives"] == [{"position": 3, "text": "alt 1.3"}]

    body = {
        "finish_reason": "found_error",
        "reason": "",
        "total_time_ms": 1000,
        "steps": [
            {"position": 0, "rating": 1},
            {"position": 1, "rating": -1, "alternatives": [{"position": 3, "rating": 1}]},
        ],
    }
    response = client.post(submit_url(assignment["id"]), body, format="json")
    assert response.status_code == 201, response.content
    # The hidden alternative may not be rated either.
    other = make_task(steps=2, alternatives={1: 2})
    StepAlternative.objects.filter(step__solution=other.solution, position=1).update(text="step 1")
    client2 = client_for(make_labeler())
    second = claim(client2)
    body["steps"][1]["alternatives"] = [{"position": 1, "rating": 1}, {"position": 2, "rating": 0}]
    response = client2.post(submit_url(second["id"]), body, format="json")
    assert response.status_code == 400
    assert "alternatives must be among positions [2]" in response.json()["steps"][0]


def test_a_solution_with_a_blank_step_is_never_served():
    generation = make_generation()
    blank = make_task(generation, steps=3, priority=10)
    Step.objects.filter(solution=blank.solution, position=1).update(text=" \t\n")
    good = make_task(generation, steps=3)
    client = client_for(make_labeler())
    assignment = claim(client)
    assert Assignment.objects.get(pk=assignment["id"]).task_id == good.pk
    assert all(step["text"].strip() for step in assignment["steps"])
    client.post(submit_url(assignment["id"]), all_great(3), format="json")
    assert client.post(CLAIM).status_code == 204


def test_progress_counts_today_and_what_is_left_in_the_round():
    generation = make_generation()
    for _ in range(4):
        make_task(generation)
    client = client_for(make_labeler())
    first = claim(client)
    assert first["progress"] == {
        "done_today": 0,
        "round": generation.number,
        "left_in_round": 3,
        "left_capped": False,
    }
    response = client.post(submit_url(first["id"]), all_great(3, claim_next=True), format="json")
    assert response.status_code == 201
    second = response.json()["next"]["assignment"]
    assert second["id"] != first["id"]
    assert second["progress"]["done_today"] == 1
    assert second["progress"]["left_in_round"] == 2


def test_submit_with_claim_next_leases_the_next_task_in_the_same_request():
    generation = make_generation()
    make_task(generation)
    make_task(generation)
    labeler = make_labeler()
    client = client_for(labeler)
    first = claim(client)
    response = client.post(submit_url(first["id"]), all_great(3, claim_next=True), format="json")
    assert response.status_code == 201
    nxt = response.json()["next"]["assignment"]
    # A real lease: the labeler's one open assignment, which a plain claim returns again.
    leased = Assignment.objects.get(pk=nxt["id"])
    assert leased.labeler_id == labeler.pk and leased.state == Assignment.State.ACTIVE
    assert Assignment.objects.filter(labeler=labeler, state="active").count() == 1
    assert claim(client)["id"] == nxt["id"]
    # A retried submit (the answer was lost) stores nothing new and hands back the same lease.
    again = client.post(submit_url(first["id"]), all_great(3, claim_next=True), format="json")
    assert again.status_code == 200
    assert again.json()["next"]["assignment"]["id"] == nxt["id"]
    assert Labeling.objects.filter(labeler=labeler).count() == 1
    # The last task: "next" is null, meaning no work; without claim_next there is no "next".
    response = client.post(submit_url(nxt["id"]), all_great(3, claim_next=True), format="json")
    assert response.json()["next"] is None
    assert "next" not in client.post(submit_url(nxt["id"]), all_great(3), format="json").json()


def test_a_draft_from_another_tab_may_not_overwrite_a_newer_one():
    make_task()
    client = client_for(make_labeler())
    assignment = claim(client)
    url = draft_url(assignment["id"])

    def save(tab: str, rev: int):
        state = {"v": 1, "rev": rev, "tab": tab, "steps": [], "alts": {}}
        return client.put(url, {"state": state, "active_ms": 10}, format="json")

    assert save("A", 3).status_code == 200
    assert save("A", 3).status_code == 200  # the same tab retrying is fine
    refused = save("B", 3)  # tab B started from the same draft and changed something
    assert refused.status_code == 409
    assert refused.json()["code"] == "draft_conflict"
    assert Assignment.objects.get(pk=assignment["id"]).draft_state["tab"] == "A"
    assert save("B", 4).status_code == 200  # after reloading, B builds on A's rev 3
    assert save("A", 4).status_code == 409


def test_history_shows_ratings_and_gold_only_for_qc_items_of_closed_rounds():
    generation = make_generation()
    qc = make_task(generation, kind="qc", gold=[1, -1, 1])
    labeler = make_labeler()
    client = client_for(labeler)
    assignment = claim(client)
    assert Assignment.objects.get(pk=assignment["id"]).task_id == qc.pk
    client.post(submit_url(assignment["id"]), all_great(3), format="json")

    me = client.get("/api/labeling/me/").json()
    [item] = me["history"]
    assert [s["rating"] for s in item["steps"]] == [1, 1, 1]
    assert [s["text"] for s in item["steps"]] == ["step 0", "step 1", "step 2"]
    assert item["problem"].startswith("What is $1+1$?")
    # The round is live: nothing tells this item apart from regular work.
    assert item["quality_control"] is False
    assert {s["gold"] for s in item["steps"]} == {None}
    assert item["gold_agreement"] is None

    Generation.objects.filter(pk=generation.pk).update(state=Generation.State.FINISHED)
    [item] = client.get("/api/labeling/me/").json()["history"]
    assert item["quality_control"] is True
    assert [s["gold"] for s in item["steps"]] == [1, -1, 1]
    assert item["gold_agreement"] == pytest.approx(2 / 3)


def prefetch_url(assignment_id: int) -> str:
    return f"/api/labeling/assignments/{assignment_id}/prefetch/"


def test_a_prefetched_task_is_a_real_lease_that_becomes_the_open_one_on_submit():
    generation = make_generation()
    make_task(generation, priority=2)
    make_task(generation, priority=1)
    labeler = make_labeler()
    client = client_for(labeler)
    current = claim(client)
    response = client.post(prefetch_url(current["id"]))
    assert response.status_code == 200
    nxt = response.json()["assignment"]
    assert nxt["id"] != current["id"]
    assert nxt["progress"]["done_today"] == 1  # counted as shown after the current task
    lease = Assignment.objects.get(pk=nxt["id"])
    assert lease.state == Assignment.State.ACTIVE and lease.prefetched and lease.slot == 0
    # It holds its slot: another labeler finds nothing left.
    other = client_for(make_labeler())
    assert other.post(CLAIM).status_code == 204
    # Asked again: the same lease, renewed; a claim still returns the current task.
    before = lease.lease_expires_at
    again = client.post(prefetch_url(current["id"])).json()["assignment"]
    assert again["id"] == nxt["id"]
    assert Assignment.objects.get(pk=nxt["id"]).lease_expires_at >= before
    assert claim(client)["id"] == current["id"]
    # Drafts on the prefetched task are accepted (the page may rate it before the submit lands).
    state = {"v": 1, "rev": 1, "tab": "A", "steps": [], "alts": {}}
    saved = client.put(draft_url(nxt["id"]), {"state": state, "active_ms": 5}, format="json")
    assert saved.status_code == 200
    # Submitting the current task makes the prefetched lease the open one.
    assert client.post(submit_url(current["id"]), all_great(3), format="json").status_code == 201
    lease.refresh_from_db()
    assert lease.state == Assignment.State.ACTIVE and not lease.prefetched
    assert claim(client)["id"] == nxt["id"]
    assert client.post(prefetch_url(nxt["id"])).status_code == 204  # nothing further to take


def test_a_prefetched_lease_lapses_like_any_and_replaces_a_lost_current_one():
    from django.utils import timezone

    from labeling import services

    generation = make_generation()
    for _ in range(3):
        make_task(generation)
    labeler = make_labeler()
    client = client_for(labeler)
    current = claim(client)
    nxt = client.post(prefetch_url(current["id"])).json()["assignment"]
    # The current lease is lost (expired and swept): the next claim hands over the prefetched one.
    Assignment.objects.filter(pk=current["id"]).update(lease_expires_at=timezone.now())
    services.leases_expire()
    assert client.post(prefetch_url(current["id"])).status_code == 409
    promoted = claim(client)
    assert promoted["id"] == nxt["id"]
    assert not Assignment.objects.get(pk=nxt["id"]).prefetched
    # A labeler who walks away: both leases lapse, are swept, and the slots go back to the queue.
    third = client.post(prefetch_url(promoted["id"])).json()["assignment"]
    Assignment.objects.filter(labeler=labeler, state="active").update(
        lease_expires_at=timezone.now()
    )
    assert services.leases_expire() == 2
    assert Assignment.objects.get(pk=third["id"]).state == Assignment.State.EXPIRED
    # All three tasks can be leased again, by three other labelers.
    taken = {
        Assignment.objects.get(pk=claim(client_for(make_labeler()))["id"]).task_id for _ in range(3)
    }
    assert len(taken) == 3


def test_screening_and_prefetch_of_someone_elses_task_are_refused():
    make_task()
    make_task()
    labeler = make_labeler()
    client = client_for(labeler)
    current = claim(client)
    assert client_for(make_labeler()).post(prefetch_url(current["id"])).status_code == 403
    pending = make_labeler(screening="pending")
    screening_generation = make_generation(-1)
    make_task(screening_generation, kind="screening", gold=[1, 1, 1])
    make_task(screening_generation, kind="screening", gold=[1, 1, 1])
    pending_client = client_for(pending)
    item = claim(pending_client)
    assert pending_client.post(prefetch_url(item["id"])).status_code == 204
