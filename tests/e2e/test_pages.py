"""The labeler's pages on the server side: who is sent where, and what needs a login."""

import pytest
from django.contrib.auth import get_user_model

from labeling.models import Labeler
from tests.e2e.conftest import PASSWORD, make_labeler

pytestmark = pytest.mark.django_db


def test_pages_need_a_login(client):
    for path in ["/", "/label/", "/me/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_root_sends_labelers_to_the_workspace_and_admins_to_the_console(client):
    make_labeler("erin")
    client.login(username="erin", password=PASSWORD)
    assert client.get("/")["Location"] == "/label/"

    admin_user = get_user_model().objects.create_user(username="root", password=PASSWORD)
    Labeler.objects.create(user=admin_user, role=Labeler.Role.ADMIN)
    client.login(username="root", password=PASSWORD)
    assert client.get("/")["Location"] in {"/console/", "/admin/"}


def test_workspace_and_personal_pages_load_the_bundle(client):
    make_labeler("frank")
    client.login(username="frank", password=PASSWORD)
    for path, page in [("/label/", "workspace"), ("/me/", "me")]:
        response = client.get(path)
        assert response.status_code == 200
        html = response.content.decode()
        assert f'data-page="{page}"' in html
        assert "/static/main.js" in html and "/static/katex.min.css" in html


def test_login_page_shows_field_errors(client):
    response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
