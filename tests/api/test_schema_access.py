"""The OpenAPI schema and its docs are for signed-in accounts of either role, not public (as the
README says); an unknown URL under /api/ answers JSON."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.labeling.factories import client_for, make_labeler

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_signed_in_account(path):
    assert Client().get(path).status_code in (401, 403)
    for role in ("labeler", "admin"):
        assert client_for(make_labeler(role=role)).get(path).status_code == 200


def test_schema_documents_paginated_lists_and_the_frameworks_answers():
    response = client_for(make_labeler()).get("/api/schema/", {"format": "json"})
    document = response.json()
    versions = document["paths"]["/api/training/versions/"]["get"]
    ok = versions["responses"]["200"]["content"]["application/json"]["schema"]
    listed = document["components"]["schemas"][ok["$ref"].rsplit("/", 1)[1]]
    assert set(listed["properties"]) == {"count", "next", "previous", "results"}
    assert {"limit", "offset"} <= {p["name"] for p in versions["parameters"]}
    claim = document["paths"]["/api/labeling/claim/"]["post"]["responses"]
    assert {"200", "204", "401", "403", "429"} <= set(claim)


def test_an_unknown_api_url_answers_json():
    response = client_for(make_labeler()).get("/api/rounds/-1/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
