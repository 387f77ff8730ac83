"""``/healthz``: each dependency's state, and a status code for what serving needs.

Labeling needs only Postgres: without Redis the cache falls back to process memory
(``config.cache``) and background work waits for the broker. So the answer is 503 when the
database does not answer and 200 otherwise, with ``"status": "degraded"`` and the failing
dependency named when the cache or the broker is down. A load balancer should not take a web
process out of service for a Redis outage it cannot fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    ping = getattr(cache, "ping", None)
    if ping is not None:
        if not ping():
            raise ConnectionError("Redis does not answer (the cache is on process memory)")
        return
    cache.get("stepwise-healthz")


def _broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


def _probe(check: Callable[[], None]) -> dict[str, Any]:
    start = time.monotonic()
    try:
        check()
    except Exception as exc:  # a probe reports every failure, whatever raised it
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:300],
            "ms": round(1000 * (time.monotonic() - start), 1),
        }
    return {"ok": True, "ms": round(1000 * (time.monotonic() - start), 1)}


def health(_request: HttpRequest) -> JsonResponse:
    checks = {"database": _probe(_database), "cache": _probe(_cache), "broker": _probe(_broker)}
    if not checks["database"]["ok"]:
        state, code = "down", 503
    elif all(check["ok"] for check in checks.values()):
        state, code = "ok", 200
    else:
        state, code = "degraded", 200
    return JsonResponse({"status": state, "checks": checks}, status=code)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 page, except under /api/, where clients read JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
