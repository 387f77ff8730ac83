"""Shared fixtures: real Postgres (pytest-django's test database), real Redis, real Celery workers.

The broker URL is moved to its own Redis database (15, or STEPWISE_TEST_REDIS_DB) for the test
session, so a platform started with `dev.py up` on the same Redis never picks up a test's tasks.
DATABASE_TEST_NAME and STEPWISE_TEST_REDIS_DB let several test sessions share one machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("STEPWISE_DATA_DIR", ROOT.parent / "shared" / "data"))


def _test_redis_db() -> str:
    """This session's Redis database; each pytest-xdist worker (gw0, gw1, ...) takes its own,
    counting down from the base, as pytest-django gives each its own test database."""
    base = int(os.environ.get("STEPWISE_TEST_REDIS_DB", "15"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        return str((base - 1 - int(worker[2:])) % 16)
    return str(base)


def _broker_for_tests(url: str) -> str:
    if url.startswith("redis+socket://"):  # embedded Redis: a Unix socket, db as a query option
        return url.split("?", 1)[0] + f"?virtual_host={_test_redis_db()}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{_test_redis_db()}"))


def _cache_for_tests(broker_url: str) -> str:
    if broker_url.startswith("redis+socket://"):
        return (
            "unix://"
            + broker_url.removeprefix("redis+socket://").split("?", 1)[0]
            + f"?db={_test_redis_db()}"
        )
    return broker_url


def pytest_configure(config):
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    os.environ["CELERY_BROKER_URL"] = _broker_for_tests(broker)
    os.environ["CACHE_URL"] = _cache_for_tests(os.environ["CELERY_BROKER_URL"])
    os.environ.setdefault("CACHE_KEY_PREFIX", "stepwise-test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def _test_database_url() -> str:
    from django.db import connection

    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the test database and the test broker.

    Tests that use it must commit their data (``@pytest.mark.django_db(transaction=True)``).
    It consumes both the default and the gpu queue; it is stopped before the test database
    is dropped.
    """
    from config.celery import app

    app.control.purge()
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": os.environ["CELERY_BROKER_URL"],
        "STEPWISE_ARTIFACT_DIR": str(tmp_path_factory.mktemp("artifacts")),
    }
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        "default,gpu",
        "--concurrency",
        "2",
        "--pool",
        "prefork",
        "-n",
        f"pytest-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    log_file = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()}")
            try:
                if app.control.ping(timeout=1.0):
                    break
            except Exception:  # broker not answering yet
                pass
            if time.time() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{log_path.read_text()}")
        proc.log_path = log_path  # type: ignore[attr-defined]
        proc.env = env  # type: ignore[attr-defined]
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


# Tiers: `dev.py test --fast` deselects these markers; they follow from what a test uses, so a new
# test that drives a browser, a worker process or the llama.cpp server is tiered without a marker.
_MARK_BY_FIXTURE = {
    "browser": "browser",
    "page": "browser",
    "celery_worker_process": "celery_worker",
    "llama_server": "slow",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _MARK_BY_FIXTURE.items():
            if fixture in used and item.get_closest_marker(marker) is None:
                item.add_marker(getattr(pytest.mark, marker))
