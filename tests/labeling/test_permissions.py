"""Roles and what a labeler may never see: gold, QC flags, others' work, admin endpoints."""

from __future__ import annotations

import json
import random

import pytest
from rest_framework.test import APIClient

from labeling import services
from tests.labeling.factories import PASSWORD, client_for, make_labeler, make_task

pytestmark = pytest.mark.django_db

ADMIN_ENDPOINTS = [
    ("get", "/api/labeling/admin/agreement/"),
    ("post", "/api/labeling/admin/gold/"),
    ("get", "/api/admin/exports/prm800k/"),
]


def test_qc_and_screening_items_look_like_any_other_task():
    generation_payloads = []
    for kind, gold in [("regular", None), ("qc", [1, -1, 0])]:
        task = make_task(kind=kind, gold=gold)
        labeler = make_labeler()
        if kind == "qc":
            task.generation.qc_rate = 1.0
            task.generation.save()
        response = client_for(labeler).post("/api/labeling/claim/")
        generation_payloads.append(response.json())
    regular, qc = generation_payloads
    assert regular.keys() == qc.keys()
    assert regular["assignment"].keys() == qc["assignment"].keys()
    text = json.dumps(qc).lower()
    for leak in ["gold", "qc", "quality", "screening", "kind", "generation", "score", "-1, 0"]:
        assert leak not in text


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
def test_labeler_is_refused_admin_endpoints(method, path):
    response = getattr(client_for(make_labeler()), method)(path, {}, format="json")
    assert response.status_code == 403


def test_admin_reads_agreement_and_marks_gold():
    admin = make_labeler(role="admin")
    task = make_task(steps=3)
    client = client_for(admin)
    assert client.get("/api/labeling/admin/agreement/").status_code == 200
    response = client.post(
        "/api/labeling/admin/gold/",
        {"solution_id": task.solution_id, "kind": "screening", "gold_ratings": [1, 1, -1]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["gold_ratings"] == [1, 1, -1]
    bad = client.post(
        "/api/labeling/admin/gold/",
        {"solution_id": task.solution_id, "kind": "qc", "gold_ratings": [1, 1, 1, 1]},
        format="json",
    )
    assert bad.status_code == 400
    assert "generation_id" in bad.json() or "gold_ratings" in bad.json()


def test_anonymous_and_accountless_users_are_refused():
    anonymous = APIClient()
    assert anonymous.post("/api/labeling/claim/").status_code in (401, 403)
    assert anonymous.get("/api/labeling/me/").status_code in (401, 403)
    from django.contrib.auth import get_user_model

    no_labeler = get_user_model().objects.create_user("plain-user", password=PASSWORD)
    client = APIClient()
    client.force_authenticate(no_labeler)
    response = client.post("/api/labeling/claim/")
    assert response.status_code == 403
    assert "labeler account" in response.json()["detail"]


def test_session_writes_need_csrf_and_token_auth_does_not():
    make_task()
    labeler = make_labeler(can_log_in=True)
    browser = APIClient(enforce_csrf_checks=True)
    assert browser.login(username=labeler.user.username, password=PASSWORD)
    refused = browser.post("/api/labeling/claim/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert browser.get("/api/labeling/me/").status_code == 200  # reads need no token
    page = browser.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    allowed = browser.post("/api/labeling/claim/", HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 200
    assert client_for(make_labeler()).post("/api/labeling/claim/").status_code == 204


def test_token_endpoint_issues_tokens_and_is_throttled(monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    # A small budget keeps the test short (each attempt hashes a password).
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "login", "3/min")
    labeler = make_labeler(can_log_in=True)
    client = APIClient(REMOTE_ADDR=f"10.9.{random.randrange(256)}.{random.randrange(256)}")
    ok = client.post(
        "/api/labeling/token/",
        {"username": labeler.user.username, "password": PASSWORD},
        format="json",
    )
    assert ok.status_code == 200 and len(ok.json()["token"]) == 40
    statuses = [
        client.post(
            "/api/labeling/token/",
            {"username": labeler.user.username, "password": "wrong"},
            format="json",
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_ping_reads_the_callers_labeler():
    labeler = make_labeler()
    assert client_for(labeler).get("/api/labeling/ping/").json() == {"labeler_id": labeler.pk}


def test_labelers_see_only_their_own_assignment_even_when_sharing_a_task():
    task = make_task(required=2)
    a, b = make_labeler(), make_labeler()
    assignment_a = services.assignment_claim(labeler=a)
    assignment_b = services.assignment_claim(labeler=b)
    assert assignment_a.task_id == assignment_b.task_id == task.pk
    response = client_for(b).put(
        f"/api/labeling/assignments/{assignment_a.pk}/draft/",
        {"state": {"stolen": True}, "active_ms": 1},
        format="json",
    )
    assert response.status_code == 403
    assignment_a.refresh_from_db()
    assert assignment_a.draft_state is None
