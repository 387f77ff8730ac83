"""The beat sweep task, executed by a real Celery worker against the test database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from labeling.models import Assignment
from labeling.tasks import sweep_expired_leases
from tests.labeling.factories import make_labeler, make_task


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_worker_sweeps_expired_leases_back_to_the_queue(celery_worker_process):
    make_task()
    make_task()
    lapsed, live = make_labeler(), make_labeler()
    now = timezone.now()
    from labeling import services

    old = services.assignment_claim(labeler=lapsed)
    fresh = services.assignment_claim(labeler=live)
    Assignment.objects.filter(pk=old.pk).update(lease_expires_at=now - timedelta(seconds=5))

    assert sweep_expired_leases.delay().get(timeout=60) == 1
    assert sweep_expired_leases.delay().get(timeout=60) == 0  # running twice is harmless
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.state == Assignment.State.EXPIRED
    assert fresh.state == Assignment.State.ACTIVE
    # The task is free again: someone else can take it.
    assert services.assignment_claim(labeler=make_labeler()).task_id == old.task_id


@pytest.mark.django_db
def test_sweep_is_registered_with_celery_beat():
    schedule = PeriodicTask.objects.get(task="labeling.sweep_expired_leases")
    assert schedule.enabled and schedule.interval.every == 60
