"""Production settings pass `check --deploy`; the login form limits failed attempts."""

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


@pytest.mark.django_db
def test_login_is_rate_limited_and_passwords_are_hashed(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES = 3
    labeler = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    assert labeler.user.password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))
    assert PASSWORD not in labeler.user.password
    client = Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.1.1")
    form = {"username": labeler.user.username, "password": "wrong"}
    assert [client.post("/accounts/login/", form).status_code for _ in range(3)] == [200] * 3
    blocked = client.post(
        "/accounts/login/", {"username": labeler.user.username, "password": PASSWORD}
    )
    assert blocked.status_code == 429  # even the right password, until the window passes
    other = Client(REMOTE_ADDR="10.255.0.1")
    good = make_labeler(f"login-{uuid.uuid4().hex[:6]}", can_log_in=True)
    ok = other.post("/accounts/login/", {"username": good.user.username, "password": PASSWORD})
    assert ok.status_code == 302


@pytest.mark.django_db
def test_admin_login_is_rate_limited_too(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES = 2
    client = Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.2.2")
    form = {"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "wrong"}
    statuses = [client.post("/admin/login/", form).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_many_failures_from_one_address_are_limited_across_usernames(settings):
    settings.STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    client = Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.3.3")
    statuses = [
        client.post(
            "/accounts/login/", {"username": f"guess-{i}-{uuid.uuid4().hex[:4]}", "password": "x"}
        ).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
