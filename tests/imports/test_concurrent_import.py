"""Two imports of the same file at the same time: the advisory lock makes the second one wait
and then skip everything, instead of failing on unique constraints or duplicating rows."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from labeling.imports import import_prm800k
from labeling.models import LabeledStep, Labeling, Solution


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_one_file_create_each_row_once(shared_data):
    path = shared_data / "prm800k_sample_openr.jsonl"
    results, errors = [], []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(import_prm800k(path, batch_size=1))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    created = sorted(result.created.get("labelings", 0) for result in results)
    skipped = sorted(result.skipped.get("labelings", 0) for result in results)
    assert created == [0, 6] and skipped == [0, 6]
    assert Labeling.objects.count() == 6
    assert Solution.objects.count() == 6
    assert LabeledStep.objects.count() == 46
