"""The rounds table's numbers: every regular task in exactly one of queued / leased / done /
paused / cancelled, QC items apart, imported generations named as imports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from active_learning import selectors
from labeling.models import Generation, LabelingTask
from labeling.services import assignment_claim
from tests.active_learning import factories as f
from tests.exports import factories as ef

pytestmark = pytest.mark.django_db


def _task(generation, **fields) -> LabelingTask:
    return LabelingTask.objects.create(
        solution=f.solution(f.problem()), generation=generation, **fields
    )


def test_queued_and_leased_never_exceed_the_tasks():
    gen = Generation.objects.create(number=5, state="active")
    shared = _task(gen, labelings_required=2, priority=2)
    _task(gen)  # nobody holds it
    _task(gen, state="done")
    _task(gen, state="paused")
    _task(gen, state="cancelled")
    # Two labelers hold the two slots of the same task: one leased task, two leases.
    for _ in range(2):
        assert assignment_claim(labeler=f.person()).task_id == shared.pk
    _task(gen, kind="qc", gold_ratings=[1, 1])
    counts = selectors.round_counts([gen.pk])[gen.pk]
    assert {k: counts[k] for k in ("tasks", "queued", "leased", "done", "paused", "cancelled")} == {
        "tasks": 5,
        "queued": 1,
        "leased": 1,
        "done": 1,
        "paused": 1,
        "cancelled": 1,
    }
    assert counts["leases"] == 2 and counts["qc_items"] == 1
    assert counts["waiting"] == 2 and counts["is_import"] is False


def test_a_paused_round_still_counts_what_it_will_serve():
    from active_learning.services import round_pause

    gen = Generation.objects.create(number=6, state="active")
    held = _task(gen, priority=1)
    for _ in range(3):
        _task(gen)
    assignment_claim(labeler=f.person())
    round_pause(generation_id=gen.pk)
    counts = selectors.round_counts([gen.pk])[gen.pk]
    # The leased task stays with its labeler; the other three wait for resume.
    assert LabelingTask.objects.get(pk=held.pk).state == "open"
    assert (counts["queued"], counts["leased"], counts["paused"]) == (0, 1, 3)
    assert counts["waiting"] == 3 and counts["queued"] + counts["leased"] <= counts["tasks"]


def test_an_imported_generation_is_an_import_not_a_finished_round():
    gen = Generation.objects.create(number=7, state="finished")
    made = ef.labeling(
        by=ef.labeler("prm800k-someone"),
        of=ef.solution(["a"]),
        steps=[],
        timestamp=datetime(2023, 1, 1, tzinfo=UTC),
        gen=gen,
    )
    made.source = "import"
    made.save()
    counts = selectors.round_counts([gen.pk])[gen.pk]
    assert counts["is_import"] is True and counts["imported"] == 1 and counts["tasks"] == 0
