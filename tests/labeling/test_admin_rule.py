"""One stepwise-admin rule everywhere: admin APIs of every app, console pages and where / sends.

A stepwise admin is a superuser or a labeler with role ``admin``; ``is_staff`` alone is not one.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from labeling.models import Labeler
from tests.labeling.factories import client_for, make_labeler

pytestmark = pytest.mark.django_db

# One read-only admin endpoint per app, and every console page.
ADMIN_APIS = [
    "/api/labeling/admin/agreement/",
    "/api/rounds/",
    "/api/training/versions/",
]
CONSOLE_PAGES = ["/console/", "/console/data/", "/console/prm/", "/console/review/"]


def _staff_labeler():
    """A labeler whose Django user is staff (Django's /admin/ site) but not a stepwise admin."""
    labeler = make_labeler(role="labeler")
    labeler.user.is_staff = True
    labeler.user.save(update_fields=["is_staff"])
    return labeler


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("admin", True), ("superuser", True), ("staff", False), ("labeler", False)],
)
def test_every_admin_api_and_console_page_applies_the_same_rule(who, allowed):
    if who == "superuser":
        user = get_user_model().objects.create_superuser(username="root-rule", password=None)
    elif who == "staff":
        user = _staff_labeler().user
    else:
        user = make_labeler(role=who).user
    browser = _browser(user)
    api = client_for(Labeler(user=user))
    for path in ADMIN_APIS:
        response = api.get(path)
        assert (response.status_code == 200) is allowed, (who, path, response.status_code)
        if not allowed:
            assert response.status_code == 403
            assert response.json() == {"detail": "Only stepwise admins may do this."}
    for path in CONSOLE_PAGES:
        status = browser.get(path).status_code
        assert status == (200 if allowed else 403), (who, path, status)
    home = browser.get("/")
    assert home.status_code == 302
    assert home.url == ("/console/" if allowed else "/label/")


def test_staff_without_a_labeler_row_is_not_an_admin_either():
    user = get_user_model().objects.create_user(username="staff-only", is_staff=True)
    browser = _browser(user)
    assert browser.get("/console/").status_code == 403
    assert browser.get("/api/rounds/").status_code == 403
    assert browser.get("/").url == "/label/"
