"""Promotion needs a held-out set big enough to mean anything (solutions and rated steps)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.active_learning import factories as people
from tests.training.conftest import TINY_HYPERPARAMETERS
from training import services
from training.models import PRMVersion
from training.selectors import active_prm_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def minimum(settings):
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS = 50
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS = 200


def _version(name, *, kind="prm", state="ready", snapshot=None, **metrics) -> PRMVersion:
    return PRMVersion.objects.create(
        name=name,
        kind=kind,
        base_model="/models/tiny",
        state=state,
        checkpoint_path=f"/ckpt/{name}",
        metrics=metrics,
        data_snapshot=snapshot or {},
    )


def test_a_first_version_on_a_small_heldout_set_stays_ready():
    v = _version("small", step_auroc=0.9, heldout_solutions=12, n_steps=80)
    with pytest.raises(services.PromotionRefused) as refused:
        services.prm_version_promote(prm_version_id=v.id)
    assert str(refused.value) == (
        "small stays ready: its metrics were measured on 12 held-out solutions and 80 rated "
        "steps, too few to mean anything; promotion needs at least 50 solutions and 200 steps "
        "(STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS / _STEPS)"
    )
    v.refresh_from_db()
    assert v.state == "ready" and active_prm_version() is None


@pytest.mark.parametrize(
    ("solutions", "steps", "promoted"),
    [(49, 1000, False), (50, 199, False), (50, 200, True), (400, 3000, True)],
)
def test_both_minimums_apply_at_their_edges(solutions, steps, promoted):
    v = _version("v", step_auroc=0.7, heldout_solutions=solutions, n_steps=steps)
    if promoted:
        services.prm_version_promote(prm_version_id=v.id)
        v.refresh_from_db()
        assert v.state == "active"
        assert v.metrics["promotion"]["forced"] is False
    else:
        with pytest.raises(services.PromotionRefused, match="too few to mean anything"):
            services.prm_version_promote(prm_version_id=v.id)


def test_a_small_set_does_not_even_replace_a_worse_active_version():
    old = _version("old", state="active", step_auroc=0.6, heldout_solutions=90, n_steps=700)
    new = _version("new", step_auroc=0.95, heldout_solutions=5, n_steps=30)
    with pytest.raises(services.PromotionRefused, match="5 held-out solutions and 30 rated"):
        services.prm_version_promote(prm_version_id=new.id)
    assert active_prm_version() == old


def test_missing_counts_count_as_nothing_and_the_snapshot_counts_solutions():
    bare = _version("bare", step_auroc=0.9)  # metrics from before counts were stored
    with pytest.raises(services.PromotionRefused, match="0 held-out solutions and 0 rated"):
        services.prm_version_promote(prm_version_id=bare.id)
    from_snapshot = _version(
        "snap", step_auroc=0.9, n_steps=300, snapshot={"heldout_solutions": 60}
    )
    assert services.heldout_size(from_snapshot) == {"solutions": 60, "steps": 300}
    services.prm_version_promote(prm_version_id=from_snapshot.id)
    assert active_prm_version() == from_snapshot


def test_an_outcome_model_needs_solutions_only():
    orm = _version("orm", kind="orm", solution_auroc=0.7, heldout_solutions=60, n_steps=0)
    services.prm_version_promote(prm_version_id=orm.id)
    assert active_prm_version("orm") == orm
    few = _version("orm-few", kind="orm", solution_auroc=0.9, heldout_solutions=10)
    with pytest.raises(services.PromotionRefused, match="at least 50 solutions and 0 steps"):
        services.prm_version_promote(prm_version_id=few.id)


def test_force_promotes_and_records_why_it_was_needed():
    v = _version("forced", step_auroc=0.9, heldout_solutions=3, n_steps=20)
    services.prm_version_promote(prm_version_id=v.id, force=True)
    v.refresh_from_db()
    assert v.state == "active"
    assert v.metrics["promotion"]["forced"] is True
    assert "3 held-out solutions and 20 rated steps" in v.metrics["promotion"]["reason"]


def test_the_minimum_is_a_setting(settings):
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS = 2
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS = 10
    v = _version("v", step_auroc=0.9, heldout_solutions=3, n_steps=20)
    services.prm_version_promote(prm_version_id=v.id)
    assert active_prm_version() == v


def test_the_api_answers_the_refusal_and_accepts_force():
    admin = APIClient()
    admin.force_authenticate(people.person("admin").user)
    v = _version("api-small", step_auroc=0.9, heldout_solutions=4, n_steps=25)
    refused = admin.post(f"/api/training/versions/{v.id}/activate/", format="json")
    assert refused.status_code == 400
    assert "4 held-out solutions and 25 rated steps, too few" in refused.json()["detail"]
    forced = admin.post(f"/api/training/versions/{v.id}/activate/", {"force": True}, format="json")
    assert forced.status_code == 200 and forced.json()["state"] == "active"


def test_training_stores_the_counts_promotion_reads(
    tiny_backbone, synthetic_labelings, settings, tmp_path
):
    settings.STEPWISE_ARTIFACT_DIR = tmp_path
    version = services.prm_version_create(
        name="counted",
        base_model=tiny_backbone,
        hyperparameters={**TINY_HYPERPARAMETERS, "epochs": 1},
        heldout_fraction=0.25,
    )
    run = services.training_run_start(prm_version_id=version.id, activate=True, enqueue=False)
    run = services.training_run_execute(run_id=run.id)
    version.refresh_from_db()
    metrics = version.metrics
    assert metrics["heldout_solutions"] == version.data_snapshot["heldout_solutions"] > 0
    assert metrics["n_steps"] > 0
    assert metrics["n_outcome_solutions"] <= metrics["heldout_solutions"]
    size = services.heldout_size(version)
    assert size == {"solutions": metrics["heldout_solutions"], "steps": metrics["n_steps"]}
    # The tiny world is below the minimum: the run succeeds, the version stays ready.
    assert run.state == "succeeded" and version.state == "ready"
    assert f"{size['solutions']} held-out solutions" in run.log
