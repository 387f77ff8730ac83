"""The demo world: shared public data, an admin, three labelers and a round with work in it.

Safe to run again: imports skip what exists, accounts are found by username (their passwords
are reset to the demo password so the printed one always works), tasks are not duplicated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from labeling.imports.common import ImportResult
from labeling.imports.prm800k import import_prm800k
from labeling.imports.problems import import_problems
from labeling.imports.solutions import import_solutions
from labeling.models import Generation, Labeler, LabelingTask, Solution

DEFAULT_DEMO_PASSWORD = "stepwise-demo"
ADMIN_USERNAME = "admin"
LABELER_USERNAMES = ("alice", "bob", "carol")
DEMO_GENERATION = 0
DEMO_TASKS = 30
# Solutions with fewer steps make poor labeling demos.
MIN_DEMO_STEPS = 3

MATH500 = "math500.jsonl"
PRM800K_SAMPLES = ("prm800k_sample_openr.jsonl", "prm800k_sample_phase2.jsonl")
PROCESSBENCH_GSM8K = "processbench_gsm8k.json"


@dataclass
class DemoResult:
    password: str
    imports: list[tuple[str, ImportResult]] = field(default_factory=list)
    accounts: list[tuple[str, str]] = field(default_factory=list)  # (username, role)
    tasks_created: int = 0
    tasks_total: int = 0


def demo_password() -> str:
    return os.environ.get("STEPWISE_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD


def load_demo(*, data_dir: Path, password: str | None = None, progress: bool = False) -> DemoResult:
    """Load the demo data from ``data_dir`` (see ../shared/data/README.md) in one transaction."""
    missing = [
        name
        for name in (MATH500, *PRM800K_SAMPLES, PROCESSBENCH_GSM8K)
        if not (data_dir / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(f"missing in {data_dir}: {', '.join(missing)}")
    result = DemoResult(password=password or demo_password())
    with transaction.atomic():
        result.imports.append(
            (MATH500, import_problems(data_dir / MATH500, split="test", progress=progress))
        )
        for name in PRM800K_SAMPLES:
            result.imports.append((name, import_prm800k(data_dir / name, progress=progress)))
        result.imports.append(
            (PROCESSBENCH_GSM8K, import_solutions(data_dir / PROCESSBENCH_GSM8K, progress=progress))
        )
        _ensure_accounts(result)
        _ensure_demo_round(result)
    return result


def _ensure_accounts(result: DemoResult) -> None:
    users = get_user_model()
    wanted = [(ADMIN_USERNAME, Labeler.Role.ADMIN)] + [
        (name, Labeler.Role.LABELER) for name in LABELER_USERNAMES
    ]
    for username, role in wanted:
        user, _ = users.objects.get_or_create(username=username)
        user.is_active = True
        if role == Labeler.Role.ADMIN:
            user.is_staff = True
            user.is_superuser = True
        user.set_password(result.password)
        user.save()
        Labeler.objects.update_or_create(
            user=user,
            defaults={"role": role, "screening_status": Labeler.ScreeningStatus.PASSED},
        )
        result.accounts.append((username, role))


def _ensure_demo_round(result: DemoResult) -> None:
    generation, _ = Generation.objects.get_or_create(
        number=DEMO_GENERATION,
        defaults={"state": Generation.State.ACTIVE, "strategy": "demo", "labelings_per_task": 1},
    )
    existing = LabelingTask.objects.filter(generation=generation).count()
    wanted = max(DEMO_TASKS - existing, 0)
    if wanted:
        # The PRM800K phase 2 samples first (MATH), then ProcessBench GSM8K pool solutions.
        candidates = (
            Solution.objects.filter(is_pre_generated=True, num_steps__gte=MIN_DEMO_STEPS)
            .exclude(tasks__generation=generation)
            .order_by("-source", "id")  # "prm800k" before "import"
            .values_list("id", flat=True)[:wanted]
        )
        tasks = LabelingTask.objects.bulk_create(
            LabelingTask(
                generation=generation,
                solution_id=solution_id,
                kind=LabelingTask.Kind.REGULAR,
                labelings_required=1,
            )
            for solution_id in candidates
        )
        result.tasks_created = len(tasks)
    result.tasks_total = LabelingTask.objects.filter(generation=generation).count()
