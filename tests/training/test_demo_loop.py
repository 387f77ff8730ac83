"""The demo's background loop (`load_demo --start-loop`, run by `dev.py up`): one sampling run
and one first PRM, found again (not made again) on every later run of the set-up."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from labeling.models import Problem
from training import demo
from training.models import PRMVersion, SamplingRun, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tiny_backbone):
    """Problems in the demo's split, a registered base model, and a local generator on it."""
    from training.services import base_model_register

    for n in range(6):
        Problem.objects.create(text=f"What is {n} + 1?", reference_answer=str(n + 1), split="test")
    base_model_register(name="tiny-base", path=tiny_backbone)
    settings.STEPWISE_GENERATORS = {"tiny-gen": {"backend": "local", "model": "tiny-base"}}
    settings.STEPWISE_GENERATOR_DEFAULT = "tiny-gen"


def test_the_loop_is_queued_once_and_found_again(world):
    first = demo.demo_loop_start(base_model="tiny-base")
    assert first.notes == []
    assert first.sampling_created and first.sampling_run.state == "queued"
    assert first.sampling_run.generator == "tiny-gen"
    assert first.sampling_run.params["samples"] == demo.DEMO_SAMPLES
    assert len(first.sampling_run.params["problem_ids"]) == demo.DEMO_PROBLEMS
    assert first.version.name == demo.DEMO_PRM_NAME and first.version.state == "training"
    assert first.version.hyperparameters == {}  # the default training options
    assert first.training_run.state == "queued" and first.training_run.params == {"activate": True}

    again = demo.demo_loop_start(base_model="tiny-base")
    assert not again.sampling_created and again.sampling_run.id == first.sampling_run.id
    assert again.version.id == first.version.id and again.training_run.id == first.training_run.id
    assert SamplingRun.objects.count() == 1
    assert PRMVersion.objects.count() == 1 and TrainingRun.objects.count() == 1


def test_a_failed_first_prm_is_trained_again_and_a_ready_one_is_left_alone(world):
    first = demo.demo_loop_start(base_model="tiny-base")
    TrainingRun.objects.filter(id=first.training_run.id).update(state="failed")
    PRMVersion.objects.filter(id=first.version.id).update(state="failed")
    retried = demo.demo_loop_start(base_model="tiny-base")
    assert retried.training_run.id != first.training_run.id
    assert retried.training_run.state == "queued"
    assert PRMVersion.objects.get(id=first.version.id).state == "training"

    TrainingRun.objects.filter(id=retried.training_run.id).update(state="succeeded")
    PRMVersion.objects.filter(id=first.version.id).update(state="ready", checkpoint_path="/c")
    settled = demo.demo_loop_start(base_model="tiny-base")
    assert settled.training_run.id == retried.training_run.id
    assert TrainingRun.objects.count() == 2


def test_what_cannot_start_is_said_not_raised(settings):
    settings.STEPWISE_GENERATORS = {"tiny-gen": {"backend": "local", "model": "nowhere"}}
    settings.STEPWISE_GENERATOR_DEFAULT = "tiny-gen"
    loop = demo.demo_loop_start(base_model="not-registered")
    assert loop.sampling_run is None and loop.version is None
    assert loop.notes[0].startswith("no generation: Generator tiny-gen: model 'nowhere'")
    assert loop.notes[1] == (
        "no first PRM: base model not-registered is not registered or not on disk"
    )
    assert not PRMVersion.objects.exists() and not SamplingRun.objects.exists()


def test_load_demo_starts_the_loop_when_asked(world, shared_data, settings):
    from training.prm.backbones import SMOLLM2_NAME, default_model_dir, is_model_dir

    if not is_model_dir(default_model_dir(settings.STEPWISE_MODEL_DIR)):
        pytest.fail("SmolLM2 is not on disk: run `python manage.py prepare_models` (dev.py does)")
    out = StringIO()
    command = ["load_demo", "--data-dir", str(shared_data), "--no-progress", "--start-loop"]
    call_command(*command, stdout=out)
    text = out.getvalue()
    run = SamplingRun.objects.get()
    assert f"demo generation: sampling run {run.id} queued with tiny-gen" in text
    version = PRMVersion.objects.get()
    assert version.name == demo.DEMO_PRM_NAME and SMOLLM2_NAME in version.base_model
    assert f"demo PRM: {demo.DEMO_PRM_NAME} (training), training run" in text
    call_command(*command, stdout=out)
    assert SamplingRun.objects.count() == 1 and PRMVersion.objects.count() == 1
    assert f"sampling run {run.id} found (queued)" in out.getvalue()
