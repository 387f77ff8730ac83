"""The admin-only sampling API: permissions, field errors, start, identical request, read."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from labeling.models import Labeler, Problem, Solution
from training.models import SamplingRun

pytestmark = pytest.mark.django_db

URL = "/api/training/sampling-runs/"


def _client(role: str | None = "admin", superuser: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(
        username=f"u-{role}-{superuser}", password="x-unused-password", is_superuser=superuser
    )
    if role:
        Labeler.objects.create(user=user, role=role)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def generators(settings, tmp_path):
    settings.STEPWISE_GENERATORS = {
        "remote": {
            "backend": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
            "api_key": "sk-secret",
        },
        "missing-local": {"backend": "local", "model": str(tmp_path / "nothing")},
    }
    settings.STEPWISE_GENERATOR_DEFAULT = "remote"
    for index in range(3):
        Problem.objects.create(text=f"Problem {index}?", reference_answer=str(index), split="test")


def test_only_admins(generators):
    assert APIClient().get(URL).status_code in (401, 403)
    labeler = _client("labeler")
    assert labeler.get(URL).status_code == 403
    assert labeler.post(URL, {"samples": 1}, format="json").status_code == 403
    assert labeler.get("/api/training/generators/").status_code == 403
    assert _client(None, superuser=True).get(URL).status_code == 200
    assert not SamplingRun.objects.exists()


def test_bad_input_is_refused_field_by_field(generators):
    admin = _client()
    response = admin.post(URL, {"samples": 0, "temperature": 5, "limit": "x"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"samples", "temperature", "limit"}
    response = admin.post(URL, {"generator": "remote"}, format="json")
    assert response.json() == {"samples": ["This field is required."]}
    cases = [
        ({"samples": 2, "generator": "nope"}, "generator", "No generator named 'nope'"),
        ({"samples": 2, "generator": "missing-local"}, "generator", "is not a registered"),
        ({"samples": 2, "split": "train"}, "split", "No problem to sample in split 'train'"),
        ({"samples": 2, "problem_ids": [999999]}, "problem_ids", "No problem with id 999999"),
        ({"samples": 2, "top_p": 0}, "top_p", "Give top_p in (0, 1]."),
        ({"samples": 2, "prompt": {"instruction": "x"}}, "prompt", "This field is required."),
    ]
    for body, field, message in cases:
        response = admin.post(URL, body, format="json")
        assert response.status_code == 400, body
        errors = response.json()
        assert list(errors) == [field], errors
        assert message in str(errors[field]), errors
    assert not SamplingRun.objects.exists() and not Solution.objects.exists()


def test_start_read_and_ask_again(generators):
    admin = _client()
    body = {
        "samples": 4,
        "temperature": 0.3,
        "max_new_tokens": 128,
        "seed": 7,
        "split": "test",
        "limit": 2,
        "prompt": {
            "instruction": "Solve it; end with # Answer.",
            "examples": [{"problem": "1 + 1?", "solution": "It is 2.\n# Answer\n2"}],
        },
    }
    response = admin.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    run = response.json()
    assert (run["generator"], run["state"], run["progress"], run["problem_count"]) == (
        "remote",
        "queued",
        0.0,
        2,
    )
    assert run["created_by"] == "u-admin-False"
    assert run["counts"]["requested"] == 0 and set(run["counts"]) >= {
        "kept", "duplicates", "no_answer", "empty",
    }  # fmt: skip
    request = run["request"]
    assert (request["samples"], request["seed"]) == (4, 7)
    assert request["sampling"]["temperature"] == 0.3
    assert request["sampling"]["max_new_tokens"] == 128
    assert request["selection"]["split"] == "test" and request["selection"]["limit"] == 2
    assert "api_key" not in request["generator_config"]  # the secret stays in the settings
    assert "queued: 4 samples for each of 2 problems with remote" in run["log"]

    again = admin.post(URL, body, format="json")
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    other = admin.post(URL, {**body, "seed": 8}, format="json")
    assert other.status_code == 201 and other.json()["id"] != run["id"]

    listed = admin.get(URL).json()
    assert listed["count"] == 2 and [r["id"] for r in listed["results"]][-1] == run["id"]
    assert "log" not in listed["results"][0]
    detail = admin.get(f"{URL}{run['id']}/")
    assert detail.status_code == 200 and detail.json()["log"] == run["log"]
    assert admin.get(f"{URL}999999/").status_code == 404


def test_generators_say_which_can_be_used(generators):
    rows = {row["name"]: row for row in _client().get("/api/training/generators/").json()}
    assert rows["remote"]["available"] and rows["remote"]["is_default"]
    assert rows["remote"]["base_url"] == "http://127.0.0.1:9/v1" and "api_key" not in rows["remote"]
    assert not rows["missing-local"]["available"]
    assert "is not a registered base model" in rows["missing-local"]["problem"]
