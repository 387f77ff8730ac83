"""The admin-only streamed export downloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from labeling.models import Labeler, Labeling
from tests.exports import factories as f

pytestmark = pytest.mark.django_db

PRM800K = "/api/admin/exports/prm800k/"
STEPWISE = "/api/admin/exports/stepwise/"
T0 = datetime(2023, 2, 1, 8, 0, tzinfo=UTC)


def _client(role: str) -> APIClient:
    person = f.labeler(f"{role}-user")
    person.role = role
    person.save()
    client = APIClient()
    client.force_authenticate(person.user)
    return client


def _data():
    steps = [{"completions": [("a", 1)], "chosen": 0}, {"completions": [("b", -1), ("c", 1)]}]
    for name, day, gen in [("alice", 1, 4), ("bob", 2, 5)]:
        f.labeling(
            by=f.labeler(name),
            of=f.solution(["a", "b"]),
            steps=steps,
            timestamp=T0.replace(day=day),
            gen=f.generation(gen),
            finish_reason="found_error",
        )


def _body(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    return [json.loads(x) for x in b"".join(response.streaming_content).decode().splitlines()]


def test_admin_downloads_a_streamed_prm800k_file():
    _data()
    response = _client(Labeler.Role.ADMIN).get(PRM800K)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    disposition = response["Content-Disposition"]
    assert disposition == 'attachment; filename="prm800k_all-rounds_2023-02-01_to_2023-02-02.jsonl"'
    by_round = _client(Labeler.Role.ADMIN).get(PRM800K, {"generation": 5})
    assert 'filename="prm800k_round-5_2023-02-02.jsonl"' in by_round["Content-Disposition"]
    assert [f.who(x["labeler"]) for x in _body(response)] == ["alice", "bob"]


def test_query_string_filters():
    _data()
    admin = _client(Labeler.Role.ADMIN)
    assert [f.who(x["labeler"]) for x in _body(admin.get(PRM800K, {"generation": 5}))] == ["bob"]
    assert [f.who(x["labeler"]) for x in _body(admin.get(PRM800K, {"labeler": "alice"}))] == [
        "alice"
    ]
    window = {"since": "2023-02-02T00:00:00Z", "include_qc": "false"}
    assert [f.who(x["labeler"]) for x in _body(admin.get(PRM800K, window))] == ["bob"]
    assert _body(admin.get(PRM800K, {"until": "2023-02-01T08:00:00Z"})) == []


def test_stepwise_download_and_its_options():
    _data()
    admin = _client(Labeler.Role.ADMIN)
    response = admin.get(STEPWISE, {"labeler": "bob"})
    assert "stepwise_all-rounds_labeler-bob_2023-02-02.jsonl" in response["Content-Disposition"]
    records = _body(response)
    labeling_id = Labeling.objects.get(labeler__user__username="bob").pk
    assert records == [
        {
            "id": f"{labeling_id}-path",
            "prompt": "What is $1+1$?",
            "completions": ["a", "b"],
            "labels": [True, False],
        },
        {
            "id": f"{labeling_id}-s1c1",
            "prompt": "What is $1+1$?",
            "completions": ["a", "c"],
            "labels": [True, True],
        },
    ]
    only_path = _body(admin.get(STEPWISE, {"labeler": "bob", "include_alternatives": "false"}))
    assert only_path == records[:1]


def test_bad_filters_answer_400_per_field():
    admin = _client(Labeler.Role.ADMIN)
    response = admin.get(PRM800K, {"generation": "six", "since": "yesterday"})
    assert response.status_code == 400
    assert set(response.json()) == {"generation", "since"}
    response = admin.get(
        STEPWISE, {"since": "2023-02-02T00:00:00Z", "until": "2023-02-01T00:00:00Z"}
    )
    assert response.status_code == 400 and "until" in response.json()
    response = admin.get(STEPWISE, {"neutral_is_positive": "maybe"})
    assert response.status_code == 400 and "neutral_is_positive" in response.json()


@pytest.mark.parametrize("url", [PRM800K, STEPWISE])
def test_labelers_and_strangers_are_refused(url):
    _data()
    assert _client(Labeler.Role.LABELER).get(url).status_code == 403
    assert APIClient().get(url).status_code in (401, 403)


def test_download_streams_from_a_server_side_cursor():
    from django.db import connection

    _data()
    response = _client(Labeler.Role.ADMIN).get(PRM800K)
    chunks = iter(response.streaming_content)
    first = json.loads(next(chunks))
    assert f.who(first["labeler"]) == "alice"
    # The first line went out while the cursor is still open on the server.
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'stepwise_export_%%'")
        assert cur.fetchone()[0] == 1
    assert f.who(json.loads(next(chunks))["labeler"]) == "bob"
    assert next(chunks, None) is None
