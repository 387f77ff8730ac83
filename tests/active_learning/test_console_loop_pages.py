"""The console pages that run the loop, server side: what the data, PRM and rounds pages show
(pool counts, base models found or missing, held-out n beside every metric, the launch form's
defaults with and without an active PRM)."""

from __future__ import annotations

import pytest
from django.test import Client

from active_learning import selectors
from tests.active_learning import factories as f
from training.models import BaseModel

pytestmark = pytest.mark.django_db


def admin_client() -> Client:
    client = Client()
    client.force_login(f.person("admin").user)
    return client


def test_data_page_counts_the_pool_and_offers_the_three_imports():
    p = f.problem()
    f.solution(p, grade="correct")
    f.solution(p, grade="wrong")
    f.solution(p, grade="ungraded")
    html = admin_client().get("/console/data/").content.decode()
    assert '<span class="big" data-count="problems">1</span>' in html
    assert '<span class="big" data-count="solutions">3</span>' in html
    assert "(1 correct, 1 wrong, 1 ungraded)" in html
    # Ungraded solutions cannot be selected: two candidates.
    assert '<span class="big" data-count="candidates">2</span>' in html
    for kind in ("problems", "solutions", "prm800k"):
        assert f'data-import-kind="{kind}"' in html
    assert 'id="generate-form"' in html


def test_pool_summary_leaves_out_labeled_and_queued_solutions():
    from labeling.models import Generation, LabelingTask

    p = f.problem()
    queued, _free, cancelled = (f.solution(p, grade="wrong") for _ in range(3))
    g = Generation.objects.create(number=0, state="active")
    LabelingTask.objects.create(solution=queued, generation=g)
    LabelingTask.objects.create(solution=cancelled, generation=g, state="cancelled")
    summary = selectors.pool_summary()
    assert summary["candidates"] == 2  # free, and the one whose task was withdrawn
    assert summary["origins"] == [{"source": "test", "generator": "", "solutions": 3}]


def test_prm_page_lists_base_models_found_or_missing_with_their_size(tmp_path, settings):
    settings.STEPWISE_TRAIN_DEFAULTS = {"train_layers": 4}
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "config.json").write_text("{}")
    BaseModel.objects.create(
        name="here-lm", path=str(tmp_path / "here"), parameter_count=134_515_008
    )
    BaseModel.objects.create(name="gone-lm", path=str(tmp_path / "gone"), parameter_count=5_000)
    html = admin_client().get("/console/prm/").content.decode()
    assert '<option value="here-lm">here-lm · 134.5M parameters · found</option>' in html
    assert (
        '<option value="gone-lm" disabled>gone-lm · 5,000 parameters · missing on disk</option>'
        in html
    )
    assert 'value="prm-1"' in html  # a free default name
    # The training options, blank by default, show the platform's defaults.
    assert 'name="train_layers" type="number" min="0" step="any" placeholder="default 4"' in html
    assert 'name="backbone_layers"' in html and 'name="epochs"' in html


def test_prm_page_shows_heldout_size_and_the_n_of_each_metric(tmp_path, settings):
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS = 50
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS = 200
    f.ready_version(
        tmp_path,
        "measured",
        metrics={
            "step_auroc": 0.71,
            "n_steps": 640.0,
            "heldout_solutions": 80.0,
            "solution_auroc": 0.66,
            "n_outcome_solutions": 77.0,
            "evaluation": {"processbench": {"f1": 0.42, "items": 400}},
        },
    )
    f.ready_version(
        tmp_path, "tiny", metrics={"step_auroc": 0.9, "n_steps": 12, "heldout_solutions": 3}
    )
    html = admin_client().get("/console/prm/").content.decode()
    assert '0.710 <span class="n">n=640 steps</span>' in html
    assert '0.660 <span class="n">n=77 solutions</span>' in html
    assert '0.420 <span class="n">n=400 solutions</span>' in html
    assert '<td class="heldout">80 solutions · 640 steps</td>' in html
    assert (
        '<td class="heldout small" title="below the promotion minimum">3 solutions · 12 steps</td>'
        in html
    )
    assert "at least 50 solutions and 200 rated steps" in html
    # A ready version can be activated or retired; the page says none is active.
    assert html.count('data-action="activate"') == 2 and "No PRM is active." in html
    assert "2 versions ready (measured, tiny): activate one" in html


def test_rounds_form_defaults_to_the_active_prm_and_its_strategy(tmp_path):
    version = f.ready_version(tmp_path, "serving")
    version.state = "active"
    version.save()
    html = admin_client().get("/console/").content.decode()
    assert "Active PRM: <strong>serving</strong>" in html
    assert '<option value="convincing_wrong_answer" selected>' in html
    assert f'<option value="{version.id}" selected>serving (active)</option>' in html
    assert "No PRM is active." not in html


def test_rounds_form_without_a_prm_offers_training_or_uniform():
    p = f.problem()
    for _ in range(5):
        f.solution(p, grade="wrong")
    html = admin_client().get("/console/").content.decode()
    assert "No PRM is active." in html and "train a PRM first" in html
    assert '<option value="uniform" selected>' in html
    # The size fits the pool the form could select from.
    assert 'name="size" type="number" min="1" max="1000000" value="5"' in html
