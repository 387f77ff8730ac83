"""The management commands, the admin-only import API and the demo loader."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from labeling.models import Generation, Labeler, Labeling, LabelingTask, Problem, Solution

pytestmark = pytest.mark.django_db


def test_import_prm800k_command_reports_counts(shared_data):
    out = io.StringIO()
    call_command("import_prm800k", str(shared_data / "prm800k_sample_openr.jsonl"),
                 "--no-progress", stdout=out)  # fmt: skip
    assert "6 lines: created" in out.getvalue() and "6 labelings" in out.getvalue()
    assert Labeling.objects.count() == 6


def test_import_command_fails_with_line_and_field(prm800k_lines, write_jsonl):
    bad = copy.deepcopy(prm800k_lines[0])
    bad["label"]["finish_reason"] = "later"
    path = write_jsonl([prm800k_lines[2], bad])
    with pytest.raises(CommandError) as error:
        call_command("import_prm800k", str(path), "--no-progress")
    assert "line 2: label.finish_reason: must be one of" in str(error.value)
    assert "nothing was imported" in str(error.value)
    assert Labeling.objects.count() == 0


def test_import_problems_and_solutions_commands(shared_data):
    out = io.StringIO()
    call_command("import_problems", str(shared_data / "math500.jsonl"), "--no-progress", stdout=out)
    call_command("import_solutions", str(shared_data / "processbench_gsm8k.json"),
                 "--no-progress", stdout=out)  # fmt: skip
    assert Problem.objects.filter(split="test").count() == 500
    assert Solution.objects.count() == 400
    assert "500 lines: created 500 problems" in out.getvalue()


def test_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_problems", str(tmp_path / "absent.jsonl"))


def _user(username: str, *, role: str | None = None, superuser: bool = False):
    user = get_user_model().objects.create_user(username, password="pw", is_superuser=superuser)
    if role:
        Labeler.objects.create(user=user, role=role)
    return user


def _upload(client: APIClient, kind: str, content: bytes):
    upload = io.BytesIO(content)
    upload.name = f"{kind}.jsonl"
    return client.post(f"/api/admin/imports/{kind}/", {"file": upload}, format="multipart")


def test_api_imports_for_admins(shared_data):
    client = APIClient()
    client.force_authenticate(_user("boss", role="admin"))
    response = _upload(client, "prm800k", (shared_data / "prm800k_sample_openr.jsonl").read_bytes())
    assert response.status_code == 201, response.content
    assert response.json()["created"]["labelings"] == 6 and response.json()["lines"] == 6

    superuser = APIClient()
    superuser.force_authenticate(_user("root", superuser=True))
    response = _upload(superuser, "problems", (shared_data / "math500.jsonl").read_bytes())
    assert response.status_code == 201
    response = _upload(
        superuser, "solutions", (shared_data / "processbench_gsm8k.json").read_bytes()
    )
    assert response.status_code == 201 and response.json()["created"]["solutions"] == 400


def test_api_bad_line_is_400_with_line_and_field(prm800k_lines):
    client = APIClient()
    client.force_authenticate(_user("boss", role="admin"))
    bad = copy.deepcopy(prm800k_lines[0])
    bad["label"]["steps"][2]["completions"][0]["rating"] = 2
    content = (json.dumps(prm800k_lines[2]) + "\n" + json.dumps(bad) + "\n").encode()
    response = _upload(client, "prm800k", content)
    assert response.status_code == 400
    assert response.json() == {
        "line": 2,
        "field": "label.steps[2].completions[0].rating",
        "detail": "must be -1, 0, 1 or null, got 2",
    }
    assert Labeling.objects.count() == 0


def test_api_refuses_labelers_and_anonymous_and_needs_a_file(shared_data):
    content = (shared_data / "math500.jsonl").read_bytes()
    labeler = APIClient()
    labeler.force_authenticate(_user("ann", role="labeler"))
    assert _upload(labeler, "problems", content).status_code == 403
    assert _upload(APIClient(), "problems", content).status_code in (401, 403)
    assert Problem.objects.count() == 0

    admin = APIClient()
    admin.force_authenticate(_user("boss", role="admin"))
    response = admin.post("/api/admin/imports/problems/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()
    assert _upload(admin, "nonsense", content).status_code == 404


def test_api_refuses_files_over_the_limit(shared_data, settings):
    settings.STEPWISE_IMPORT_API_MAX_BYTES = 1000
    client = APIClient()
    client.force_authenticate(_user("boss", role="admin"))
    response = _upload(client, "problems", (shared_data / "math500.jsonl").read_bytes())
    assert response.status_code == 413
    assert "manage.py import_problems" in response.json()["file"][0]
    assert Problem.objects.count() == 0


def test_load_demo_twice(shared_data, monkeypatch):
    monkeypatch.setenv("STEPWISE_DEMO_PASSWORD", "let-me-in")
    out = io.StringIO()
    call_command("load_demo", "--data-dir", str(shared_data), "--no-progress", stdout=out)
    counts = {
        model.__name__: model.objects.count()
        for model in (Problem, Solution, Labeling, LabelingTask, Labeler, Generation)
    }
    call_command("load_demo", "--data-dir", str(shared_data), "--no-progress", stdout=out)
    assert counts == {
        model.__name__: model.objects.count()
        for model in (Problem, Solution, Labeling, LabelingTask, Labeler, Generation)
    }
    text = out.getvalue()
    assert "let-me-in" in text and "alice" in text

    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.check_password("let-me-in")
    assert admin.labeler.role == "admin"
    for name in ("alice", "bob", "carol"):
        user = users.get(username=name)
        assert user.check_password("let-me-in") and user.is_active
        assert user.labeler.role == "labeler" and user.labeler.screening_status == "passed"

    generation = Generation.objects.get(number=0)
    assert generation.state == "active"
    tasks = LabelingTask.objects.filter(generation=generation)
    assert tasks.count() == 30
    assert all(t.kind == "regular" and t.labelings_required == 1 for t in tasks)
    assert all(t.solution.num_steps >= 3 and t.solution.is_pre_generated for t in tasks)
    assert tasks.filter(solution__source="prm800k").exists()
    assert Problem.objects.filter(split="test").count() == 500
    assert Solution.objects.filter(source="import").exclude(grade="ungraded").count() == 400


def test_load_demo_without_data_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="missing in"):
        call_command("load_demo", "--data-dir", str(tmp_path), "--no-progress")


def test_commands_show_a_progress_bar(shared_data):
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err):
        call_command("import_solutions", str(shared_data / "processbench_gsm8k.json"), stdout=out)
        call_command("import_problems", str(shared_data / "math500.jsonl"), stdout=out)
    assert err.getvalue().count("100%") == 2
    assert Solution.objects.count() == 400 and Problem.objects.filter(split="test").count() == 500
