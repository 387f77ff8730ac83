"""Production settings pass `check --deploy`; one lockout policy limits failed sign-ins on the
login form, the admin login and the token endpoint (django-axes, config/login.py)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import Client

from tests.labeling.factories import PASSWORD, make_labeler

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_check_deploy():
    env = {
        **os.environ,
        "STEPWISE_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_DEBUG": "0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Other apps' schema hints may be listed; no deployment security issue may be.
    assert not re.search(r"\(security\.[WE]\d+\)", output), output


def test_insecure_settings_fail_check_deploy():
    """The check above can fail: without the production switch it reports problems."""
    env = {**os.environ, "STEPWISE_PRODUCTION": "0", "DJANGO_DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert re.search(r"\(security\.W\d+\)", result.stdout + result.stderr)


def _address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.1"


@pytest.mark.django_db
def test_login_is_rate_limited_and_passwords_are_hashed(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES = 3
    labeler = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    assert labeler.user.password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))
    assert PASSWORD not in labeler.user.password
    client = Client(REMOTE_ADDR=_address())
    form = {"username": labeler.user.username, "password": "wrong"}
    # The third failure reaches the limit: from then on the form answers 429.
    assert [client.post("/accounts/login/", form).status_code for _ in range(3)] == [200, 200, 429]
    blocked = client.post(
        "/accounts/login/", {"username": labeler.user.username, "password": PASSWORD}
    )
    assert blocked.status_code == 429  # even the right password, until the window passes
    assert blocked["Retry-After"] == str(settings.STEPWISE_LOGIN_WINDOW_SECONDS)
    other = Client(REMOTE_ADDR="10.255.0.1")
    good = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    ok = other.post("/accounts/login/", {"username": good.user.username, "password": PASSWORD})
    assert ok.status_code == 302


@pytest.mark.django_db
def test_admin_login_is_rate_limited_too(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES = 2
    client = Client(REMOTE_ADDR=_address())
    form = {"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "wrong"}
    statuses = [client.post("/admin/login/", form).status_code for _ in range(3)]
    assert statuses == [200, 429, 429]


@pytest.mark.django_db
def test_many_failures_from_one_address_are_limited_across_usernames(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    client = Client(REMOTE_ADDR=_address())
    statuses = [
        client.post(
            "/accounts/login/", {"username": f"guess-{i}-{uuid.uuid4().hex[:4]}", "password": "x"}
        ).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 429, 429]


# ---------------------------------------------------------------- one policy for every way in


def _token(client: Client, username: str, password: str):
    return client.post(
        "/api/labeling/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


@pytest.mark.django_db
def test_form_failures_lock_the_token_endpoint_too(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES = 3
    labeler = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    name = labeler.user.username
    form = Client(REMOTE_ADDR=_address())
    for _ in range(3):
        form.post("/accounts/login/", {"username": name, "password": "wrong"})
    # Another address, another way in, the right password: still locked out.
    response = _token(Client(REMOTE_ADDR=_address()), name, PASSWORD)
    assert response.status_code == 429, response.content
    assert "token" not in response.json()
    assert response["Retry-After"] == str(settings.STEPWISE_LOGIN_WINDOW_SECONDS)


@pytest.mark.django_db
def test_token_guesses_lock_the_login_form_too(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES = 3
    labeler = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    name = labeler.user.username
    api = Client(REMOTE_ADDR=_address())
    statuses = [_token(api, name, f"guess {i}").status_code for i in range(4)]
    assert statuses == [400, 400, 429, 429]  # guesses get 429 once the limit is reached
    assert _token(api, name, PASSWORD).status_code == 429
    form = Client(REMOTE_ADDR=_address())
    assert (
        form.post("/accounts/login/", {"username": name, "password": PASSWORD}).status_code == 429
    )


@pytest.mark.django_db
def test_token_endpoint_gives_a_token_when_not_locked_out(settings):
    labeler = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    response = _token(Client(REMOTE_ADDR=_address()), labeler.user.username, PASSWORD)
    assert response.status_code == 200, response.content
    assert len(response.json()["token"]) == 40


@pytest.mark.django_db
def test_behind_a_proxy_the_lockout_counts_the_forwarded_client_address(settings):
    """With one trusted proxy every request comes from its address; the client's own address
    (the last one of X-Forwarded-For) is what counts, so one guesser does not lock out others,
    and a forged X-Forwarded-For prefix does not let a guesser escape its count."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    proxy = "10.0.0.2"
    attacker = _address()
    for i in range(3):
        guesser = Client(
            REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"{uuid.uuid4().int % 250}.9.9.9, {attacker}"
        )
        guesser.post(
            "/accounts/login/", {"username": f"guess-{i}-{uuid.uuid4().hex[:4]}", "password": "x"}
        )
    locked = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=attacker)
    assert _token(locked, f"guess-{uuid.uuid4().hex[:4]}", "x").status_code == 429
    # Someone else behind the same proxy signs in as usual.
    good = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    other = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=_address())
    ok = other.post("/accounts/login/", {"username": good.user.username, "password": PASSWORD})
    assert ok.status_code == 302
    assert _token(other, good.user.username, PASSWORD).status_code == 200
