"""The console's pages on the server side: who may open them and what they show."""

from __future__ import annotations

import pytest
from django.test import Client

from active_learning import charts
from labeling.models import Generation
from tests.active_learning import factories as f
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def signed_in(who) -> Client:
    client = Client()
    client.force_login(who.user)
    return client


@pytest.mark.parametrize("url", ["/console/", "/console/data/", "/console/prm/"])
def test_only_admins_open_the_console(url):
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert signed_in(f.person("labeler")).get(url).status_code == 403
    response = signed_in(f.person("admin")).get(url)
    assert response.status_code == 200
    assert b"console.js" in response.content


def test_rounds_page_offers_usable_versions_and_strategies(tmp_path):
    ready = f.ready_version(tmp_path, "prm-ready")
    training = f.ready_version(tmp_path, "prm-training")
    training.state = "training"
    training.save()
    html = signed_in(f.person("admin")).get("/console/").content.decode()
    assert f'<option value="{ready.id}">prm-ready (ready)</option>' in html
    assert "prm-training" not in html.split('id="launch-form"')[1]
    for strategy in ("convincing_wrong_answer", "uncertainty"):
        assert f'<option value="{strategy}">' in html
    # No version is active: the form says so and starts on the strategy that needs none.
    assert '<option value="uniform" selected>' in html
    assert "No PRM is active." in html and "prm-ready is ready: pick it" in html
    assert "Labels per day: no data yet" in html


def test_prm_page_plots_each_generations_selecting_version(tmp_path):
    a = f.ready_version(tmp_path, "prm-a", metrics={"step_auroc": 0.61})
    b = f.ready_version(
        tmp_path,
        "prm-b",
        metrics={"step_auroc": 0.74, "evaluation": {"processbench": {"f1": 0.5}}},
    )
    Generation.objects.create(number=0, prm_version=a, state="finished")
    Generation.objects.create(number=1, prm_version=b, state="active")
    TrainingRun.objects.create(prm_version=b, state="succeeded", progress=1.0)
    html = signed_in(f.person("admin")).get("/console/prm/").content.decode()
    # Every point and every table cell names the n it was measured on ("?" when not stored).
    assert "prm-a, n=? steps: 0.6100 (generation 0)" in html
    assert "prm-b, n=? steps: 0.7400 (generation 1)" in html
    assert "prm-b, n=? solutions: 0.5000 (generation 1)" in html  # the evaluation's F1
    assert html.count("<polyline") == 2  # step AUROC and first-error F1; the rest are empty
    assert '0.740 <span class="n">n=? steps</span>' in html  # the versions table


def test_charts_escape_labels_and_handle_flat_or_empty_data():
    svg = charts.line_chart([(0, 0.5, "<b>x</b>"), (1, 0.5, "y")], title="t & u")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "t &amp; u" in svg
    assert "no data yet" in charts.line_chart([], title="empty")
    bars = charts.bar_chart([("2026-01-01", 3), ("2026-01-02", 0)], title="per day")
    assert bars.count("<rect") == 2 and "2026-01-02" in bars


def test_console_links_the_phase1_rounds_page_and_it_opens_for_admins():
    admin = signed_in(f.person("admin"))
    html = admin.get("/console/").content.decode()
    assert '<a href="/label/interactive/rounds/">Phase 1</a>' in html
    page = admin.get("/label/interactive/rounds/")
    assert page.status_code == 200
    assert 'data-page="phase1-rounds"' in page.content.decode()
