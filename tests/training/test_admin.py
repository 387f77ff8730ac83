"""Django admin: versions with metrics, read-only runs, promote/retire actions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from training.models import PRMVersion, TrainingRun

pytestmark = pytest.mark.django_db

# A held-out set above the promotion minimum, so the regression rule is what decides.
HELDOUT = {"heldout_solutions": 80, "n_steps": 600}


@pytest.fixture
def admin_client_(client):
    user = get_user_model().objects.create_superuser("root", "r@example.com", "x-unused-password")
    client.force_login(user)
    return client


def test_versions_and_runs_pages(admin_client_):
    version = PRMVersion.objects.create(
        name="v1", base_model="/m", state="ready", checkpoint_path="/c", metrics={"step_auroc": 0.9}
    )
    run = TrainingRun.objects.create(
        prm_version=version, state="succeeded", progress=1.0, log="attempt 1 started\ndone\n"
    )
    page = admin_client_.get("/admin/training/prmversion/").content.decode()
    assert "step_auroc 0.9000" in page
    assert (
        "step_auroc"
        in admin_client_.get(f"/admin/training/prmversion/{version.id}/change/").content.decode()
    )
    run_page = admin_client_.get(f"/admin/training/trainingrun/{run.id}/change/").content.decode()
    assert "attempt 1 started" in run_page
    assert 'name="log"' not in run_page  # read-only: no form field to edit
    assert admin_client_.get("/admin/training/trainingrun/add/").status_code == 403


def test_promote_and_retire_actions(admin_client_):
    PRMVersion.objects.create(
        name="old",
        base_model="/m",
        state="active",
        checkpoint_path="/a",
        metrics={"step_auroc": 0.8, **HELDOUT},
    )
    worse = PRMVersion.objects.create(
        name="worse",
        base_model="/m",
        state="ready",
        checkpoint_path="/b",
        metrics={"step_auroc": 0.7, **HELDOUT},
    )
    better = PRMVersion.objects.create(
        name="better",
        base_model="/m",
        state="ready",
        checkpoint_path="/c",
        metrics={"step_auroc": 0.9, **HELDOUT},
    )
    url = "/admin/training/prmversion/"
    response = admin_client_.post(
        url, {"action": "promote", "_selected_action": [worse.id]}, follow=True
    )
    assert "would regress" in response.content.decode()
    admin_client_.post(url, {"action": "promote", "_selected_action": [better.id]})
    states = dict(PRMVersion.objects.values_list("name", "state"))
    assert states == {"old": "retired", "worse": "ready", "better": "active"}
    admin_client_.post(url, {"action": "retire", "_selected_action": [better.id]})
    assert PRMVersion.objects.get(id=better.id).state == "retired"
