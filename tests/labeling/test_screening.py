"""Screening: screening items only and first; admission at the threshold; gold marking."""

from __future__ import annotations

import pytest
from django.test import override_settings

from labeling import services
from labeling.models import Labeler, LabelingTask
from tests.labeling.factories import (
    make_generation,
    make_labeler,
    make_labeling_body,
    make_solution,
    make_task,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def screening_set():
    """Two screening items with gold (4 steps each) and some regular work."""
    regular = make_task()
    items = []
    for gold in ([1, 1, 0, 1], [1, -1, 1, 1]):
        solution = make_solution(4)
        items.append(
            services.task_mark_gold(solution_id=solution.pk, kind="screening", gold_ratings=gold)
        )
    return items, regular


def label(labeler, ratings, finish_reason):
    assignment = services.assignment_claim(labeler=labeler)
    services.assignment_submit(
        assignment_id=assignment.pk, labeler=labeler, **make_labeling_body(ratings, finish_reason)
    )
    return assignment


def test_pending_labeler_gets_only_screening_then_is_admitted(screening_set):
    items, regular = screening_set
    labeler = make_labeler(screening="pending")
    first = label(labeler, [1, 1, 0, 1], "solution")  # 4/4 agree
    assert first.task_id == items[0].pk
    labeler.refresh_from_db()
    assert labeler.screening_status == "pending"
    second = label(labeler, [1, -1], "found_error")  # 2/2 agree
    assert second.task_id == items[1].pk
    labeler.refresh_from_db()
    assert labeler.screening_status == "passed"
    assert labeler.screening_agreement == 1.0
    assert services.assignment_claim(labeler=labeler).task_id == regular.pk


@override_settings(STEPWISE_SCREENING_THRESHOLD=0.75)
def test_below_threshold_fails_and_gets_no_work(screening_set):
    labeler = make_labeler(screening="pending")
    label(labeler, [1, 1, 1, 1], "solution")  # 3/4 agree
    label(labeler, [1, 1, 1, -1], "found_error")  # 2/4 agree: 5/8 = 0.625 overall
    labeler.refresh_from_db()
    assert labeler.screening_status == "failed"
    assert labeler.screening_agreement == pytest.approx(5 / 8)
    assert services.assignment_claim(labeler=labeler) is None


@override_settings(STEPWISE_SCREENING_THRESHOLD=0.6)
def test_threshold_is_configurable(screening_set):
    labeler = make_labeler(screening="pending")
    label(labeler, [1, 1, 1, 1], "solution")
    label(labeler, [1, 1, 1, -1], "found_error")
    labeler.refresh_from_db()
    assert labeler.screening_status == Labeler.ScreeningStatus.PASSED


def test_pending_labeler_without_screening_items_gets_nothing():
    make_task()
    assert services.assignment_claim(labeler=make_labeler(screening="pending")) is None


def test_passed_labeler_never_gets_screening_items(screening_set):
    items, regular = screening_set
    labeler = make_labeler(screening="passed")
    assert services.assignment_claim(labeler=labeler).task_id == regular.pk


def test_gold_from_an_expert_labeling():
    task = make_task(steps=3)
    expert = make_labeler(role="admin")
    label(expert, [1, 0, -1], "found_error")
    labeling = task.labelings.get()
    with pytest.raises(services.LabelingInvalid) as refused:
        # Its own task already has a labeling as a regular item: its kind may not change.
        services.task_mark_gold(
            solution_id=task.solution_id,
            kind="qc",
            generation_id=task.generation_id,
            expert_labeling_id=labeling.pk,
        )
    assert "kind" in refused.value.errors
    qc_round = make_generation()
    qc = services.task_mark_gold(
        solution_id=task.solution_id,
        kind="qc",
        generation_id=qc_round.pk,
        expert_labeling_id=labeling.pk,
    )
    assert qc.pk != task.pk and qc.generation == qc_round
    assert qc.kind == LabelingTask.Kind.QUALITY_CONTROL and qc.gold_ratings == [1, 0, -1]
    assert qc.state == LabelingTask.State.OPEN
    with pytest.raises(services.LabelingInvalid) as error:
        services.task_mark_gold(solution_id=task.solution_id, kind="screening")
    assert "gold_ratings" in error.value.errors


def test_qc_agreement_per_labeler_selector():
    from labeling.selectors import qc_agreement_by_labeler

    qc = make_task(kind="qc", gold=[1, 1, -1], steps=3)
    qc.generation.qc_rate = 1.0
    qc.generation.save()
    good, sloppy = make_labeler(), make_labeler()
    label(good, [1, 1, -1], "found_error")
    label(sloppy, [1, -1], "found_error")
    rows = {row["labeler_id"]: row for row in qc_agreement_by_labeler()}
    assert rows[good.pk]["agreement"] == 1.0 and rows[good.pk]["steps_compared"] == 3
    # Step 2 is asked (gold's first error) and was left unrated after the early -1: 1 of 3.
    assert rows[sloppy.pk]["agreement"] == pytest.approx(1 / 3)
    assert rows[sloppy.pk]["steps_compared"] == 3 and rows[sloppy.pk]["qc_items"] == 1


# ---------------------------------------------------------------- steps left unrated


def test_giving_up_after_rating_one_step_does_not_pass_screening(screening_set):
    """Each screening item answered with a give-up that rates step 0 as +1 (which agrees with
    gold): the gold steps up to the first error that were left unrated count against it."""
    labeler = make_labeler(screening="pending")
    label(labeler, [1], "give_up")  # gold [1, 1, 0, 1]: 1 of 4 asked steps agrees
    label(labeler, [1], "give_up")  # gold [1, -1, 1, 1]: 1 of 2 (up to the first error)
    labeler.refresh_from_db()
    assert labeler.screening_status == "failed"
    assert labeler.screening_agreement == pytest.approx(2 / 6)


def test_unrated_gold_steps_count_as_disagreement_for_qc():
    from labeling.selectors import qc_agreement_by_labeler

    qc = make_task(kind="qc", gold=[1, 1, 1, -1], steps=4)
    qc.generation.qc_rate = 1.0
    qc.generation.save()
    quitter = make_labeler()
    label(quitter, [1], "give_up")
    (row,) = [r for r in qc_agreement_by_labeler() if r["labeler_id"] == quitter.pk]
    assert row["steps_compared"] == 4
    assert row["agreement"] == pytest.approx(1 / 4)
