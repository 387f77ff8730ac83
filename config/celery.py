"""The Celery app. Workers: `celery -A config worker -Q default` and `-Q gpu --concurrency 1`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("stepwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="stepwise.ping")
def ping(value: str = "pong") -> str:
    """Round trip through the broker; used by health checks and the worker test."""
    return value
