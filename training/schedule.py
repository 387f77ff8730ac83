"""django-celery-beat entries for retraining and the stale-run sweep, kept in step with settings.

Created or updated after every `migrate` (post_migrate), so changing a setting and migrating is
all it takes; an entry switched off in settings is disabled, not deleted, to keep its history.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from config import jobs

SWEEP = "training: fail stale runs"
NEW_LABELS = "training: retrain when enough new labels"
SCHEDULED = "training: scheduled retrain"


def sync_periodic_tasks(**_kwargs: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    def every(period: str, count: int) -> IntervalSchedule:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=max(count, 1), period=period)
        return schedule

    entries = [
        (
            SWEEP,
            "stepwise.training.sweep_stale_runs",
            every(IntervalSchedule.MINUTES, jobs.SWEEP_EVERY_MINUTES),
            True,
        ),
        (
            NEW_LABELS,
            "stepwise.training.retrain_if_enough_labels",
            every(IntervalSchedule.MINUTES, 15),
            settings.STEPWISE_RETRAIN_MIN_NEW_LABELS > 0,
        ),
        (
            SCHEDULED,
            "stepwise.training.retrain_scheduled",
            every(IntervalSchedule.HOURS, settings.STEPWISE_RETRAIN_INTERVAL_HOURS),
            settings.STEPWISE_RETRAIN_SCHEDULE_ENABLED,
        ),
    ]
    for name, task, interval, enabled in entries:
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": interval, "enabled": enabled, "queue": "default"},
        )
