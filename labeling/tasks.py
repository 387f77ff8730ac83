"""Celery tasks of the labeling app."""

from __future__ import annotations

from celery import shared_task

from labeling import services


@shared_task(name="labeling.sweep_expired_leases")
def sweep_expired_leases() -> int:
    """Return lapsed leases to the queue (scheduled every minute by celery beat).

    A single idempotent UPDATE: running it twice, or alongside a claim, is harmless.
    """
    return services.leases_expire()
