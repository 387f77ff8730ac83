"""Values out of what the database holds, and empty files: refused with the line and the field,
by the API (400) and the commands (an error, no traceback) alike; nothing is kept."""

from __future__ import annotations

import copy
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from labeling.models import Labeler, Labeling, Problem, Solution

pytestmark = pytest.mark.django_db

HUGE = 2**63


def _problem(**overrides) -> dict:
    return {"problem": "What is $1+1$?", "answer": "2", "level": "Level 1", **overrides}


def _solution(**overrides) -> dict:
    return {"problem": "What is $1+1$?", "steps": ["1+1=2.", "# Answer\n\n2"], **overrides}


def _prm800k(lines: list[dict], change) -> dict:
    line = copy.deepcopy(lines[0])  # phase 1, with a human completion at step 1
    change(line)
    return line


def _set(path: str, value):
    """A change setting `path` ("label.steps[1].human_completion.source") to `value`."""

    def change(line: dict) -> None:
        keys = [
            int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")
        ]
        target = line
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


# (id, kind, record or a function of the PRM800K sample lines, field, start of the detail)
BAD = [
    ("level a million", "problems", _problem(level=10**6), "level", "must be between 0 and 32767"),
    ("level 2^63", "problems", _problem(level=HUGE), "level", "must be between 0 and 32767"),
    ("Level 2^63", "problems", _problem(level=f"Level {HUGE}"), "level", 'must be "Level N"'),
    ("grade a list", "solutions", _solution(grade=["correct"]), "grade", "must be one of"),
    ("grade an object", "solutions", _solution(grade={"a": 1}), "grade", "must be one of"),
    ("blank solution step", "solutions", _solution(steps=["1+1=2.", " \n"]), "steps[1]",
     "a step must not be blank"),
    ("total_time 2^63", "prm800k", lambda lines: _prm800k(lines, _set("label.total_time", HUGE)),
     "label.total_time", f"must be at most {HUGE - 1}, got {HUGE}"),
    ("generation 2^40", "prm800k", lambda lines: _prm800k(lines, _set("generation", 2**40)),
     "generation", f"must be at most {2**31 - 1}, got {2**40}"),
    ("source over 32", "prm800k",
     lambda lines: _prm800k(lines, _set("label.steps[1].human_completion.source", "h" * 33)),
     "label.steps[1].human_completion.source", "must be at most 32 characters, got 33"),
    ("before year 1 in UTC", "prm800k",
     lambda lines: _prm800k(lines, _set("timestamp", "0001-01-01T00:00:00+14:00")),
     "timestamp", "must fall between years 1 and 9999 in UTC"),
    ("after year 9999 in UTC", "prm800k",
     lambda lines: _prm800k(lines, _set("timestamp", "9999-12-31T23:00:00-14:00")),
     "timestamp", "must fall between years 1 and 9999 in UTC"),
    ("blank completion", "prm800k",
     lambda lines: _prm800k(lines, _set("label.steps[0].completions[0].text", "  ")),
     "label.steps[0].completions[0].text", "a step must not be blank"),
    ("blank human completion", "prm800k",
     lambda lines: _prm800k(lines, _set("label.steps[1].human_completion.text", "")),
     "label.steps[1].human_completion.text", "a step must not be blank"),
    ("blank pre-generated step", "prm800k",
     lambda lines: _prm800k(lines[6:], _set("question.pre_generated_steps[2]", "\n")),
     "question.pre_generated_steps[2]", "a step must not be blank"),
]  # fmt: skip


def _content(kind: str, record, prm800k_lines) -> bytes:
    """A good line, then the bad one (line 2)."""
    good = {
        "problems": _problem(problem="What is $2+2$?", answer="4"),
        "solutions": _solution(steps=["Add.", "# Answer\n\n2"]),
        "prm800k": prm800k_lines[2],
    }[kind]
    if callable(record):
        record = record(prm800k_lines)
    return f"{json.dumps(good)}\n{json.dumps(record)}\n".encode()


def _admin() -> APIClient:
    user = get_user_model().objects.create_user("boss", password="pw")
    Labeler.objects.create(user=user, role="admin")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _nothing_kept() -> bool:
    return not (Problem.objects.exists() or Solution.objects.exists() or Labeling.objects.exists())


@pytest.mark.parametrize(
    "kind, record, field, detail", [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_the_api_answers_400_with_line_and_field(kind, record, field, detail, prm800k_lines):
    upload = SimpleUploadedFile("bad.jsonl", _content(kind, record, prm800k_lines))
    response = _admin().post(f"/api/admin/imports/{kind}/", {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["line"], body["field"]) == (2, field)
    assert body["detail"].startswith(detail), body
    assert _nothing_kept()


@pytest.mark.parametrize(
    "kind, record, field, detail", [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_the_command_names_line_and_field(kind, record, field, detail, prm800k_lines, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(_content(kind, record, prm800k_lines))
    with pytest.raises(CommandError) as error:
        call_command(f"import_{kind}", str(path), "--no-progress")
    assert f"line 2: {field}: {detail}" in str(error.value)
    assert "nothing was imported" in str(error.value)
    assert _nothing_kept()


@pytest.mark.parametrize("content", [b"", b"\n  \n"], ids=["empty", "blank lines"])
@pytest.mark.parametrize("kind", ["problems", "solutions", "prm800k"])
def test_an_empty_file_is_refused_by_the_command_and_the_api_alike(kind, content, tmp_path):
    message = "the file is empty: there is no line to import"
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(CommandError) as error:
        call_command(f"import_{kind}", str(path), "--no-progress")
    assert message in str(error.value)

    upload = SimpleUploadedFile("empty.jsonl", content)
    response = _admin().post(f"/api/admin/imports/{kind}/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"file": [message]}
