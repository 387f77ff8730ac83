"""The admin console in headless Chromium: launch a round from the form and watch it progress
on the dashboard (a real Celery worker runs the launch), then pause and cancel it."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import FRONTEND, PASSWORD, log_in, snap

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module", autouse=True)
def console_bundle(frontend_built) -> None:
    """The shared fixture watches main.js; the console has its own bundle, so check it too."""
    import shutil
    import subprocess

    bundle = FRONTEND / "dist" / "console.js"
    sources = [FRONTEND / "src" / "console.ts", *(FRONTEND / "src" / "console").rglob("*")]
    if bundle.exists() and all(p.stat().st_mtime <= bundle.stat().st_mtime for p in sources):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build the console bundle for the browser tests")
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True, capture_output=True)


def make_world(tmp_path):
    """A ready PRM whose scores are already stored (the worker has nothing to score), a pool of
    12 graded solutions over 4 problems, and an admin and a labeler."""
    from django.contrib.auth import get_user_model

    from labeling.models import Labeler
    from tests.active_learning import factories as f

    version = f.ready_version(tmp_path, "prm-console")
    for p in range(4):
        prob = f.problem()
        for s in range(3):
            sol = f.solution(prob, grade="wrong" if s else "correct")
            f.score(version, sol, 0.2 + 0.1 * s + 0.01 * p)
    User = get_user_model()
    admin = User.objects.create_user(username="ada", password=PASSWORD)
    Labeler.objects.create(user=admin, role="admin", screening_status="passed")
    labeler = User.objects.create_user(username="lou", password=PASSWORD)
    Labeler.objects.create(user=labeler, screening_status="passed")
    return version


def test_launch_a_round_and_watch_it_on_the_dashboard(
    page, live_server, celery_worker_process, tmp_path
):
    from labeling.models import Generation

    make_world(tmp_path)
    log_in(page, "ada", "/console/")
    page.wait_for_selector("#rounds-status:has-text('No rounds yet.')")

    # Bad input first: the API's field message appears beside the field; nothing is created.
    page.fill("input[name=size]", "0")
    page.click("#launch-button")
    page.wait_for_selector(".field-error[data-field=size]")
    assert not Generation.objects.exists()

    page.select_option("select[name=strategy]", "convincing_wrong_answer")
    page.select_option("select[name=prm_version]", label="prm-console (ready)")
    page.fill("input[name=size]", "5")
    page.fill("input[name=wrong_share]", "0.6")
    page.fill("input[name=per_problem_cap]", "2")
    page.click("#launch-button")
    page.wait_for_selector("#rounds-status:has-text('Round 0 launched.')")
    assert page.locator(".field-error").count() == 0

    # The dashboard polls until the worker has selected and queued the batch.
    row = page.locator("tr[data-round='0']")
    page.wait_for_selector("tr[data-round='0'][data-state='active']", timeout=60_000)
    assert "prm-console" in row.inner_text()
    assert "5 · 0 · 0 / 5" in row.locator(".counts").inner_text()
    assert "queued 5 solutions" in row.inner_text()
    assert "wrong_share=0.6" in row.inner_text()
    generation = Generation.objects.get(number=0)
    assert generation.strategy_params == {"wrong_share": 0.6, "per_problem_cap": 2}
    assert generation.tasks.count() == 5
    assert row.locator("a", has_text="PRM800K").get_attribute("href") == (
        "/api/admin/exports/prm800k/?generation=0"
    )
    snap(page, "console-round-active")

    row.locator("button[data-action=pause]").click()
    page.wait_for_selector("tr[data-round='0'][data-state='paused']")
    assert set(generation.tasks.values_list("state", flat=True)) == {"paused"}
    page.locator("tr[data-round='0'] button[data-action=cancel]").click()
    page.click("dialog#confirm-dialog #confirm-yes")  # cancelling asks first
    page.wait_for_selector("tr[data-round='0'][data-state='cancelled']")
    assert page.locator("tr[data-round='0'] button").count() == 0
    assert set(generation.tasks.values_list("state", flat=True)) == {"cancelled"}


def test_labelers_cannot_open_the_console(page, live_server, tmp_path):
    make_world(tmp_path)
    log_in(page, "lou", "/label/")
    response = page.goto("/console/")
    assert response is not None and response.status == 403
    api = page.request.get("/api/rounds/")
    assert api.status == 403 and "strategy" not in api.text()
