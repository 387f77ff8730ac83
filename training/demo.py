"""The demo's background loop: after `load_demo`, the default generator samples part of the pool
and a first PRM trains from the default base model on the imported labels, both on the gpu
worker, both visible in the console (`/console/data/`, `/console/prm/`).

Safe to run again: the sampling request is the same one, so the run that has it is found; the
PRM version is found by name, and only a failed one is trained again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from training import sampling, services
from training.models import BaseModel, PRMVersion, SamplingRun, TrainingRun
from training.services import runs

logger = logging.getLogger(__name__)

DEMO_PRM_NAME = "demo-smollm2-prm"
# A few problems, a few samples each: minutes on a laptop CPU, the rest of the pool is imported.
DEMO_SAMPLES = 4
DEMO_PROBLEMS = 4
DEMO_SPLIT = "test"
_UNFINISHED = ("queued", "running")


@dataclass
class DemoLoop:
    sampling_run: SamplingRun | None = None
    sampling_created: bool = False
    version: PRMVersion | None = None
    training_run: TrainingRun | None = None
    notes: list[str] = field(default_factory=list)


def demo_loop_start(*, base_model: str, created_by=None) -> DemoLoop:
    """Queue the demo's sampling run and first PRM training (each once); returns what it found
    or made, with a note per step it could not take (say, the base model is not on disk)."""
    loop = DemoLoop()
    try:
        loop.sampling_run, loop.sampling_created = sampling.sampling_run_start(
            samples=DEMO_SAMPLES,
            split=DEMO_SPLIT,
            limit=DEMO_PROBLEMS,
            created_by=created_by,
        )
    except ValidationError as exc:
        loop.notes.append(f"no generation: {' '.join(sum(exc.message_dict.values(), []))}")
    else:
        if not loop.sampling_created and loop.sampling_run.state in _UNFINISHED:
            # Its message may have died with an earlier run of the set-up: send it again. A
            # second delivery is harmless (the claim ignores a run another worker holds).
            found = loop.sampling_run
            transaction.on_commit(lambda: sampling.enqueue_run(found))

    model = BaseModel.objects.filter(name=base_model).first()
    if model is None or not model.found:
        loop.notes.append(f"no first PRM: base model {base_model} is not registered or not on disk")
        return loop
    with transaction.atomic():
        version = PRMVersion.objects.select_for_update().filter(name=DEMO_PRM_NAME).first()
        if version is None:
            # The default options: the ones that make a first PRM practical on a CPU.
            version = services.prm_version_create(name=DEMO_PRM_NAME, base_model=base_model)
        if version.state in (PRMVersion.State.TRAINING, PRMVersion.State.FAILED):
            unfinished = version.runs.filter(
                kind=TrainingRun.Kind.TRAIN, state__in=_UNFINISHED
            ).first()
            if unfinished is not None:
                transaction.on_commit(lambda: runs.enqueue_run(unfinished))
            # Activation follows the promotion rule: on the demo's few held-out labels it is
            # refused, and the run's log says why (the console can force it).
            loop.training_run = unfinished or services.training_run_start(
                prm_version_id=version.id, activate=True
            )
        else:
            loop.training_run = version.runs.filter(kind=TrainingRun.Kind.TRAIN).last()
    loop.version = version
    return loop
