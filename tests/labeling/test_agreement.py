"""Krippendorff's alpha (ordinal) checked against a case worked out by hand, and the admin page."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.agreement import agreement_report, labeler_vs_rest_alpha, ordinal_alpha
from tests.labeling.factories import PASSWORD, make_labeler, make_labeling_body, make_task

# Two coders, four steps: (1,1) (0,0) (1,0) (-1,-1).
# Coincidences: o(1,1)=2, o(0,0)=2, o(-1,-1)=2, o(1,0)=o(0,1)=1; n_-1=2, n_0=3, n_1=3, n=8.
# Ordinal distances d(c,k) = (sum of n_g from c to k - (n_c + n_k)/2)^2:
#   d(-1,0) = 2.5^2 = 6.25, d(0,1) = 3^2 = 9, d(-1,1) = 5.5^2 = 30.25.
# D_o = (1/8) * (1*9 + 1*9) = 2.25
# D_e = 2 * (2*3*6.25 + 3*3*9 + 2*3*30.25) / (8*7) = 600/56
# alpha = 1 - 2.25 * 56 / 600 = 1 - 0.21 = 0.79
HAND_CASE = {
    "a": {(1, 0): 1, (1, 1): 0, (1, 2): 1, (1, 3): -1},
    "b": {(1, 0): 1, (1, 1): 0, (1, 2): 0, (1, 3): -1},
}


def test_ordinal_alpha_matches_the_hand_computation():
    assert ordinal_alpha(HAND_CASE) == pytest.approx(0.79)


def test_alpha_ignores_single_rated_steps_and_is_none_when_undefined():
    with_extra = {**HAND_CASE, "c": {(2, 0): 1}}  # a step only c rated adds nothing
    assert ordinal_alpha(with_extra) == pytest.approx(0.79)
    assert ordinal_alpha({"a": {(1, 0): 1}, "b": {(1, 0): 1}}) is None  # no variation
    assert ordinal_alpha({"a": {(1, 0): 1}}) is None


def test_labeler_vs_rest_uses_the_others_median():
    three = {**HAND_CASE, "c": {(1, 0): 1, (1, 1): 0, (1, 2): 0, (1, 3): -1}}
    # "a" vs median(b, c) = b's ratings: the hand case again.
    alpha, shared = labeler_vs_rest_alpha("a", three)
    assert shared == 4 and alpha == pytest.approx(0.79)
    assert labeler_vs_rest_alpha("b", three) == (1.0, 4)


def _label(labeler, ratings, finish_reason):
    assignment = services.assignment_claim(labeler=labeler)
    services.assignment_submit(
        assignment_id=assignment.pk, labeler=labeler, **make_labeling_body(ratings, finish_reason)
    )


@pytest.mark.django_db
def test_report_per_generation_and_admin_page(client):
    task = make_task(steps=4, required=2)
    a, b = make_labeler("alpha-a", can_log_in=True), make_labeler("alpha-b")
    _label(a, [1, 0, 1, -1], "found_error")
    _label(b, [1, 0, 0, -1], "found_error")
    report = agreement_report()
    generation = next(
        row for row in report["generations"] if row["generation"] == task.generation.number
    )
    assert generation["alpha"] == pytest.approx(0.79)
    assert generation["labelers"] == 2 and generation["shared_steps"] == 4
    by_name = {row["labeler"]: row for row in report["labelers"]}
    assert by_name["alpha-a"]["alpha_vs_rest"] == pytest.approx(0.79)

    admin = make_labeler("alpha-admin", role="admin", can_log_in=True)
    admin.user.is_staff = True
    admin.user.is_superuser = True
    admin.user.save()
    assert client.login(username="alpha-admin", password=PASSWORD)
    page = client.get("/admin/labeling/labeler/agreement/")
    assert page.status_code == 200
    assert b"0.790" in page.content and b"alpha-a" in page.content
    client.logout()
    assert client.login(username="alpha-a", password=PASSWORD)
    assert client.get("/admin/labeling/labeler/agreement/").status_code == 302  # not staff
