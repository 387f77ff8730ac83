"""A Redis outage (issue 14, item 1): labeling and the login form keep working on Postgres
alone; /healthz names what is down. A gunicorn of this project runs on the test database with its
cache and broker on a redis-server the test started, and the test kills that redis-server with
SIGKILL."""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import _test_database_url
from tests.faults import PostgresServer, RedisServer, WebServer
from tests.labeling.factories import PASSWORD, make_labeler, make_task, solution_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_and_web(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    web = WebServer(
        env={
            "DATABASE_URL": _test_database_url(),
            "CACHE_URL": redis.url,
            "CELERY_BROKER_URL": redis.url,
        },
        directory=tmp_path / "web",
    ).start()
    try:
        yield redis, web
    finally:
        web.stop()
        redis.kill()


def _token(labeler) -> dict[str, str]:
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=labeler.user)
    return {"Authorization": f"Token {token.key}", "Content-Type": "application/json"}


def _form_login(web: WebServer, username: str) -> int:
    """Sign in through the login form (CSRF cookie and token first); the answer's status."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
    )
    with opener.open(web.base + "/accounts/login/", timeout=30) as page:
        html = page.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        web.base + "/accounts/login/", data=form, headers={"Referer": web.base + "/"}
    )
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_claim_submit_and_ping_work_while_redis_is_killed(redis_and_web):
    redis, web = redis_and_web
    make_task(steps=3)
    make_task(steps=3)
    labeler = make_labeler()
    headers = _token(labeler)
    assert web.request("GET", "/api/labeling/ping/", headers=headers)[0] == 200

    redis.kill()
    for _ in range(3):  # every request, not only the first after the failure
        status, body = web.request("GET", "/api/labeling/ping/", headers=headers)
        assert status == 200, body
    status, body = web.request("POST", "/api/labeling/claim/", headers=headers)
    assert status == 200, body
    assignment_id = json.loads(body)["assignment"]["id"]
    status, body = web.request(
        "POST",
        f"/api/labeling/assignments/{assignment_id}/submit/",
        body=json.dumps(solution_body(3)).encode(),
        headers=headers,
    )
    assert status == 201, body
    status, body = web.request("POST", "/api/labeling/claim/", headers=headers)
    assert status == 200, body

    assert _form_login(web, make_labeler(can_log_in=True).user.username) == 302

    status, body = web.request("GET", "/healthz")
    report = json.loads(body)
    assert status == 200, report  # serving needs only Postgres
    assert report["status"] == "degraded"
    assert report["checks"]["database"]["ok"] is True
    assert report["checks"]["cache"]["ok"] is False
    assert report["checks"]["broker"]["ok"] is False
    assert "cache: Redis unreachable" in web.log_path.read_text()  # said once, in the log

    # Back on the shared cache once Redis answers again (after the fallback's retry delay).
    redis.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = web.request("GET", "/healthz")
        if json.loads(body)["status"] == "ok":
            break
        time.sleep(1)
    assert json.loads(body)["status"] == "ok", body
    assert web.request("GET", "/api/labeling/ping/", headers=headers)[0] == 200


def test_healthz_answers_503_when_the_database_is_killed(tmp_path):
    postgres = PostgresServer().start()
    redis = RedisServer(tmp_path / "redis").start()
    web = WebServer(
        env={"DATABASE_URL": postgres.url, "CACHE_URL": redis.url, "CELERY_BROKER_URL": redis.url},
        directory=tmp_path / "web",
    )
    try:
        web.start()
        status, body = web.request("GET", "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        postgres.kill()
        status, body = web.request("GET", "/healthz")
        report = json.loads(body)
        assert status == 503, report
        assert report["status"] == "down"
        assert report["checks"]["database"]["ok"] is False
        assert report["checks"]["cache"]["ok"] is True
    finally:
        web.stop()
        redis.kill()
        postgres.remove()
