"""Admin-only training API: permissions, field-level errors, launch and activate."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from labeling.models import Labeler
from training.models import PRMVersion, TrainingRun

pytestmark = pytest.mark.django_db


def _client(role: str | None = "admin", superuser: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(
        username=f"u-{role}-{superuser}", password="x-unused-password", is_superuser=superuser
    )
    if role:
        Labeler.objects.create(user=user, role=role)
    client = APIClient()
    client.force_authenticate(user)
    return client


def _version(name, state="ready", **metrics) -> PRMVersion:
    # Held-out counts above the promotion minimum, so the regression rule is what decides.
    metrics = {"heldout_solutions": 80, "n_steps": 600, **metrics}
    return PRMVersion.objects.create(
        name=name, base_model="/m", state=state, checkpoint_path=f"/c/{name}", metrics=metrics
    )


def test_labelers_and_anonymous_users_are_refused():
    _version("v")
    assert APIClient().get("/api/training/versions/").status_code in (401, 403)
    labeler = _client("labeler")
    assert labeler.get("/api/training/versions/").status_code == 403
    assert labeler.post("/api/training/versions/1/activate/").status_code == 403
    assert labeler.get("/api/training/runs/").status_code == 403
    assert _client(None, superuser=True).get("/api/training/versions/").status_code == 200


def test_launch_validates_fields_and_writes_nothing_on_error(tmp_path):
    admin = _client()
    response = admin.post(
        "/api/training/versions/",
        {"name": "v1", "base_model": str(tmp_path / "nope"), "kind": "xyz", "epochs": -1},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"kind", "epochs"}
    response = admin.post(
        "/api/training/versions/",
        {"name": "v1", "base_model": str(tmp_path / "nope")},
        format="json",
    )
    assert response.status_code == 400
    assert "is not a local model directory" in response.json()["base_model"][0]
    assert PRMVersion.objects.count() == 0 and TrainingRun.objects.count() == 0


def test_launch_creates_a_version_and_queues_its_training(tmp_path):
    admin = _client()
    response = admin.post(
        "/api/training/versions/",
        {"name": "v1", "base_model": str(tmp_path), "epochs": 2, "activate": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"]["state"] == "training"
    assert body["version"]["hyperparameters"] == {"epochs": 2.0}
    assert body["run"]["state"] == "queued" and body["run"]["params"] == {"activate": True}
    again = admin.post(f"/api/training/versions/{body['version']['id']}/train/", format="json")
    assert again.status_code == 400
    assert again.json() == {"detail": "v1 is already being trained"}
    runs = admin.get(f"/api/training/runs/?prm_version={body['version']['id']}").json()
    assert [r["id"] for r in runs["results"]] == [body["run"]["id"]]


def test_activate_follows_the_promotion_rule():
    admin = _client()
    _version("old", state="active", step_auroc=0.9)
    worse = _version("worse", step_auroc=0.8)
    refused = admin.post(f"/api/training/versions/{worse.id}/activate/", format="json")
    assert refused.status_code == 400
    assert "would regress" in refused.json()["detail"]
    forced = admin.post(
        f"/api/training/versions/{worse.id}/activate/", {"force": True}, format="json"
    )
    assert forced.status_code == 200 and forced.json()["state"] == "active"
    listed = admin.get("/api/training/versions/").json()["results"]
    assert {v["name"]: v["state"] for v in listed} == {"old": "retired", "worse": "active"}


def test_evaluate_and_score_need_a_finished_checkpoint():
    admin = _client()
    training = PRMVersion.objects.create(name="t", base_model="/m")
    response = admin.post(f"/api/training/versions/{training.id}/score/", format="json")
    assert response.status_code == 400
    assert "has no finished checkpoint" in response.json()["detail"]
    ready = _version("r")
    response = admin.post(
        f"/api/training/versions/{ready.id}/evaluate/",
        {"processbench_path": "/does/not/exist.json"},
        format="json",
    )
    assert response.status_code == 400 and "processbench_path" in response.json()
    response = admin.post(
        f"/api/training/versions/{ready.id}/score/", {"solution_ids": [1, 2]}, format="json"
    )
    assert response.status_code == 202 and response.json()["kind"] == "score"
    assert admin.get("/api/training/versions/999/").status_code == 404
