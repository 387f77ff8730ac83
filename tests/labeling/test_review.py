"""The console's review screen: reasons, flagged steps, disagreements with alpha, browsing by
labeler / round / problem, one labeling read-only, gold from a labeling, labelers' scores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from labeling import review
from labeling.models import LabeledCompletion, Labeler, LabelingTask
from tests.exports import factories as f

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STEPS = ["Let $x = 2$.", "Then $x^2 = 4$.", "So $x^3 = 6$.", "# Answer\n\n6"]


def _rated(*ratings: int) -> list[dict]:
    return [{"completions": [(STEPS[i], r)], "chosen": 0} for i, r in enumerate(ratings)]


@pytest.fixture
def world():
    """Round 3: alice and bob label one solution (they disagree on step 2), carol gives up on
    another and flags a step; round 4: bob reports a bad problem."""
    round3, round4 = f.generation(3), f.generation(4)
    shared = f.solution(STEPS, problem_text="Cube $x$ when $x = 2$.", answer="8")
    other = f.solution(["Guess 7.", "# Answer\n\n7"], problem_text="What is $3+4$?", answer="7")
    alice, bob, carol = f.labeler("alice"), f.labeler("bob"), f.labeler("carol")
    made = {
        "alice": f.labeling(
            by=alice,
            of=shared,
            steps=_rated(1, 1, -1),
            timestamp=T0,
            gen=round3,
            finish_reason="found_error",
        ),
        "bob": f.labeling(
            by=bob,
            of=shared,
            steps=_rated(1, -1),
            timestamp=T0,
            gen=round3,
            finish_reason="found_error",
        ),
        "carol": f.labeling(
            by=carol,
            of=other,
            steps=[{"completions": [("Guess 7.", 0)], "chosen": 0}],
            timestamp=T0,
            gen=round3,
            finish_reason="give_up",
        ),
        "bad": f.labeling(
            by=bob,
            of=other,
            steps=[],
            timestamp=T0.replace(day=2),
            gen=round4,
            finish_reason="bad_problem",
        ),
    }
    made["carol"].finish_reason_text = "Not sure whether guessing counts as a step."
    made["carol"].save()
    made["bad"].finish_reason_text = "The reference answer is wrong."
    made["bad"].save()
    LabeledCompletion.objects.filter(labeled_step__labeling=made["carol"]).update(flagged=True)
    made["shared"], made["other"] = shared, other
    return made


def _admin_client() -> Client:
    admin = f.labeler("ada")
    admin.role = Labeler.Role.ADMIN
    admin.save()
    client = Client()
    client.force_login(admin.user)
    return client


def test_only_admins_open_the_review_pages(world):
    url = f"/console/review/labelings/{world['bob'].pk}/"
    assert Client().get("/console/review/").status_code == 302
    labeler = Client()
    labeler.force_login(f.labeler("lou").user)
    assert labeler.get("/console/review/").status_code == 403
    assert labeler.get(url).status_code == 403
    admin = _admin_client()
    assert admin.get("/console/review/").status_code == 200
    assert admin.get(url).status_code == 200
    assert admin.get("/console/review/labelings/999999/").status_code == 404


def test_reasons_flags_and_disagreements(world):
    everything = review.ReviewFilter()
    reasons = list(review.labelings_with_reasons(everything))
    assert [(x.labeler.user.username, x.finish_reason) for x in reasons] == [
        ("bob", "bad_problem"),
        ("carol", "give_up"),
    ]
    flagged = list(review.flagged_steps(everything))
    assert [c.labeled_step.labeling_id for c in flagged] == [world["carol"].pk]
    keys = list(review.disagreement_keys(everything))
    # Step 1 (0-based) is +1 for alice and -1 for bob; step 0 is +1 for both.
    assert keys == [
        {"solution": world["shared"].pk, "step": 1, "raters": 2, "lowest": -1, "highest": 1}
    ]
    [row] = review.disagreement_rows(keys, everything)
    assert row["text"] == STEPS[1]
    assert [(r["labeler"], r["rating"], r["labeling"]) for r in row["ratings"]] == [
        ("bob", -1, world["bob"].pk),
        ("alice", 1, world["alice"].pk),
    ]


def test_filters_by_labeler_round_and_problem(world):
    by_bob = review.ReviewFilter(labeler_id=world["bob"].labeler_id)
    assert [x.finish_reason for x in review.labelings_with_reasons(by_bob)] == ["bad_problem"]
    # A labeler's disagreements are the steps they rated that others rated differently.
    assert len(review.disagreement_keys(by_bob)) == 1
    by_carol = review.ReviewFilter(labeler_id=world["carol"].labeler_id)
    assert len(review.disagreement_keys(by_carol)) == 0
    in_round_4 = review.ReviewFilter(generation=4)
    assert [x.pk for x in review.labelings_browse(in_round_4)] == [world["bad"].pk]
    assert len(review.disagreement_keys(in_round_4)) == 0
    of_problem = review.ReviewFilter(problem_id=world["shared"].problem_id)
    assert {x.pk for x in review.labelings_browse(of_problem)} == {
        world["alice"].pk,
        world["bob"].pk,
    }


def test_review_page_lists_and_names_bad_filters(world):
    admin = _admin_client()
    page = admin.get("/console/review/").content.decode()
    assert "Not sure whether guessing counts as a step." in page
    assert "The reference answer is wrong." in page
    page = admin.get("/console/review/", {"show": "disagreements"}).content.decode()
    assert 'id="alpha-table"' in page and 'id="disagreements-table"' in page
    assert re.search(r"bob −1.*alice \+1", page, re.S)
    page = admin.get("/console/review/", {"show": "labelings", "round": "4"}).content.decode()
    assert page.count('data-labeling="') == 1
    response = admin.get("/console/review/", {"show": "labelings", "labeler": "bob"})
    assert response.status_code == 200
    assert 'data-field="labeler"' in response.content.decode()


def test_one_labeling_as_the_labeler_saw_it(world):
    detail = review.labeling_detail(labeling_id=world["bob"].pk)
    assert [(s["position"], s["rating"]) for s in detail["steps"]] == [(0, 1), (1, -1)]
    # The workspace stops at the first Bad step: the rest was never shown to bob.
    assert [s["position"] for s in detail["unreached"]] == [2, 3]
    assert [o["labeler"] for o in detail["others"]] == ["alice"]
    assert detail["gold_blockers"] == []
    page = _admin_client().get(f"/console/review/labelings/{world['bob'].pk}/").content.decode()
    data = re.search(
        r'<script id="labeling-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert json.loads(data.group(1))["steps"][1]["text"] == STEPS[1]
    assert 'id="gold-form"' in page


def test_gold_from_a_labeling_then_the_labelers_qc_score(world):
    from labeling.models import Labeling

    admin = _admin_client()
    round3 = world["alice"].generation
    round3.state = "active"
    round3.save()
    response = admin.post(
        "/api/labeling/admin/gold/",
        {
            "solution_id": world["shared"].pk,
            "kind": "qc",
            "generation_id": round3.pk,
            "expert_labeling_id": world["alice"].pk,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    task = LabelingTask.objects.get(pk=response.json()["task_id"])
    assert task.kind == "qc" and task.gold_ratings == [1, 1, -1]
    assert task.gold_labeling_id == world["alice"].pk == response.json()["gold_labeling_id"]
    gold = {x.pk: x.is_gold for x in review.labelings_browse(review.ReviewFilter())}
    assert gold[world["alice"].pk] and not gold[world["bob"].pk]
    detail = review.labeling_detail(labeling_id=world["alice"].pk)
    assert detail["gold"][0]["matches"] and detail["gold"][0]["gold_ratings"] == "+1 +1 −1"
    # dan labels the QC item: 2 of his 3 ratings agree with gold.
    dan = f.labeler("dan")
    dan.screening_status, dan.screening_agreement = "passed", 0.8
    dan.save()
    qc = f.labeling(
        by=dan, of=world["shared"], steps=_rated(1, 0, -1), timestamp=T0, gen=round3, qc=True
    )
    Labeling.objects.filter(pk=qc.pk).update(task=task)
    scores = {row["name"]: row for row in review.labeler_scores()}
    assert scores["dan"]["qc_items"] == 1
    assert scores["dan"]["qc_agreement"] == pytest.approx(2 / 3)
    assert scores["dan"]["screening_agreement"] == 0.8
    assert scores["carol"]["give_ups"] == 1 and scores["carol"]["flags"] == 1
    page = admin.get("/console/review/", {"show": "labelers"}).content.decode()
    row = re.search(r'<tr data-labeler="dan">(.*?)</tr>', page, re.S).group(1)
    assert "80%" in row and "67%" in row


def test_a_labeling_with_an_unrated_step_cannot_be_gold(world):
    LabeledCompletion.objects.filter(labeled_step__labeling=world["carol"]).update(rating=None)
    detail = review.labeling_detail(labeling_id=world["carol"].pk)
    assert detail["gold_blockers"] == ["some steps it reached have no rating"]
    page = _admin_client().get(f"/console/review/labelings/{world['carol'].pk}/").content
    assert b'id="gold-form"' not in page and b'id="gold-blocked"' in page


@pytest.mark.parametrize("tab", ["reasons", "flagged", "disagreements", "labelings"])
def test_a_review_list_costs_the_same_queries_for_few_rows_or_many(world, tab):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    admin = _admin_client()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin.get("/console/review/", {"show": tab}).status_code == 200
        return len(captured)

    few = queries()
    for n in range(4):
        sol = f.solution(STEPS, problem_text=f"Problem {n}: cube $x$.", answer="8")
        for who, ratings in (("alice", (1, 1, -1)), ("bob", (1, -1))):
            made = f.labeling(
                by=f.labeler(who),
                of=sol,
                steps=_rated(*ratings),
                timestamp=T0,
                gen=world["alice"].generation,
                finish_reason="give_up",
            )
            LabeledCompletion.objects.filter(labeled_step__labeling=made).update(flagged=True)
    assert queries() == few


def test_every_tab_of_an_empty_platform_answers():
    admin = _admin_client()
    for tab in ("reasons", "flagged", "disagreements", "labelings", "labelers"):
        response = admin.get("/console/review/", {"show": tab})
        assert response.status_code == 200, tab
    assert "No labeling gave up" in admin.get("/console/review/").content.decode()
