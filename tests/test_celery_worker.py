import pytest

from config.celery import ping


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_task_runs_on_a_real_worker_through_redis(celery_worker_process):
    result = ping.delay("hello from the test")
    assert result.get(timeout=30) == "hello from the test"
    # The worker wrote it to its log: it ran in the worker process, not eagerly here.
    assert "stepwise.ping" in celery_worker_process.log_path.read_text()
