"""50 labelers at once against real Postgres, each thread on its own connection."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections
from django.db.models import Count, Q

from labeling import services
from labeling.models import Assignment, Labeling, LabelingTask
from tests.labeling.factories import make_generation, make_labeler, make_labeling_body, make_task

THREADS = 50
TASKS = 30
REQUIRED = 3
QC_ITEMS = 1


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_drain_the_queue_without_over_assignment_or_loss():
    generation = make_generation(qc_rate=0.2)
    regular = [make_task(generation, required=REQUIRED, steps=3) for _ in range(TASKS)]
    qc = [make_task(generation, kind="qc", gold=[1, 1, 1], steps=3) for _ in range(QC_ITEMS)]
    labelers = [make_labeler() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    submitted: dict[int, list[int]] = {labeler.pk: [] for labeler in labelers}
    errors: list[BaseException] = []

    def work(labeler, seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait(timeout=60)
            for _ in range(2000):  # bounded; the queue empties long before
                assignment = services.assignment_claim(labeler=labeler)
                if assignment is None:
                    # Leases others hold may still come back to the queue: wait for them.
                    if not Assignment.objects.filter(state="active").exists():
                        return
                    time.sleep(0.02)
                    continue
                if rng.random() < 0.1:
                    # Abandon it: the lease lapses and the sweep returns the task to the queue.
                    Assignment.objects.filter(pk=assignment.pk).update(
                        lease_expires_at=assignment.created_at
                    )
                    services.leases_expire()
                    continue
                body = make_labeling_body([1, 0, 1], "solution")
                labeling, created = services.assignment_submit(
                    assignment_id=assignment.pk, labeler=labeler, **body
                )
                again, created_again = services.assignment_submit(
                    assignment_id=assignment.pk, labeler=labeler, **body
                )
                assert created and not created_again and again.pk == labeling.pk
                submitted[labeler.pk].append(labeling.pk)
            raise AssertionError("a labeler never ran out of work")
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(labeler, i)) for i, labeler in enumerate(labelers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    connections.close_all()
    assert not errors, errors[:3]

    # Nothing over-assigned: no task ever has more live holders than N.
    live = Q(assignments__state__in=["active", "submitted"])
    over = LabelingTask.objects.filter(kind="regular").annotate(n=Count("assignments", filter=live))
    assert all(task.n <= task.labelings_required for task in over)
    # The queue is empty: every regular task got exactly N labelings by N different people.
    for task in regular:
        task.refresh_from_db()
        labelings = Labeling.objects.filter(task=task)
        assert task.state == LabelingTask.State.DONE
        assert labelings.count() == REQUIRED
        assert labelings.values("labeler").distinct().count() == REQUIRED
    # Every QC item went to every labeler exactly once.
    for item in qc:
        assert sorted(Labeling.objects.filter(task=item).values_list("labeler_id", flat=True)) == (
            sorted(labeler.pk for labeler in labelers)
        )
    # No labeling lost or duplicated: the threads' receipts are exactly the stored rows.
    receipts = [pk for pks in submitted.values() for pk in pks]
    assert len(receipts) == len(set(receipts)) == TASKS * REQUIRED + QC_ITEMS * THREADS
    assert set(receipts) == set(Labeling.objects.values_list("pk", flat=True))
    assert (
        Counter(Labeling.objects.values_list("labeler_id", "solution_id")).most_common(1)[0][1] == 1
    )
    assert not Assignment.objects.filter(state="active").exists()


@pytest.mark.django_db(transaction=True)
def test_simultaneous_retries_of_one_submit_store_one_labeling():
    make_task(required=1, steps=3)
    labeler = make_labeler()
    assignment = services.assignment_claim(labeler=labeler)
    start = threading.Barrier(8)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            start.wait(timeout=30)
            labeling, created = services.assignment_submit(
                assignment_id=assignment.pk,
                labeler=labeler,
                **make_labeling_body([1, 1, 1], "solution"),
            )
            results.append((labeling.pk, created))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    connections.close_all()
    assert not errors, errors
    assert len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert Labeling.objects.filter(task=assignment.task).count() == 1
