"""`python manage.py simulate_rounds`: active vs uniform selection with an oracle labeler.

The loop itself lives in ``active_learning.simulation`` (no Django); this command builds the pool,
the held-out set, the oracle and the tiny backbone, and runs the loop on the platform's own pieces
(``active_learning.simulation_db``: tables, SQL selection, training-data builder) in a scratch
database it creates next to the configured one and drops at the end, so the platform's data is
never read by the arms nor written. ``--seeds`` runs several paired seeds and adds the bootstrap
interval of the data-efficiency ratio over them.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import LabeledStep, Labeling, Solution

# Offsets that keep the held-out and labeling-PRM worlds apart from the pool (and from the pools of
# nearby seeds, which draw problems with seed, seed + 1, ...).
HELDOUT_SEED = 7919
ORACLE_SEED = 104729

QUICK = {
    "rounds": 2,
    "per_round": 8,
    "pool_problems": 12,
    "samples_per_problem": 4,
    "heldout_problems": 8,
    "oracle_problems": 16,
    "epochs": 1.0,
    "backbone_hidden": 32,
    "backbone_layers": 1,
}
DEFAULTS = {
    "rounds": 5,
    "per_round": 30,
    "pool_problems": 100,
    "samples_per_problem": 8,
    "heldout_problems": 40,
    "oracle_problems": 100,
    "epochs": 4.0,
    # Small enough to train a few hundred solutions in about a minute on 2 contended CPU cores.
    "backbone_hidden": 64,
    "backbone_layers": 2,
}


class Command(BaseCommand):
    help = (
        "Simulate active-learning rounds with an oracle labeler: K rounds with convincing "
        "wrong-answer selection and K with uniform selection from the same pool and per-round "
        "budget, a fresh PRM trained after each round, quality measured on a fixed held-out set. "
        "Writes simulation.csv/.md/.json/.png and reports the data-efficiency ratio."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rounds", type=int, help=f"rounds per arm (default {DEFAULTS['rounds']})"
        )
        parser.add_argument(
            "--per-round",
            type=int,
            help=f"solutions labeled per round (default {DEFAULTS['per_round']})",
        )
        parser.add_argument(
            "--pool-problems",
            type=int,
            help=f"synthetic problems in the candidate pool (default {DEFAULTS['pool_problems']})",
        )
        parser.add_argument(
            "--samples-per-problem",
            type=int,
            help=f"candidate solutions per problem (default {DEFAULTS['samples_per_problem']})",
        )
        parser.add_argument(
            "--heldout-problems",
            type=int,
            help=f"synthetic held-out problems (default {DEFAULTS['heldout_problems']})",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="seeds worlds, selection and training"
        )
        parser.add_argument(
            "--seeds",
            type=int,
            nargs="+",
            help="run these paired seeds one after the other (instead of --seed): each writes "
            "its report under OUT/seed-N, and OUT/summary.md gives every seed's ratio and a "
            "percentile-bootstrap interval of their geometric mean",
        )
        parser.add_argument(
            "--control",
            action="store_true",
            help="add a control arm: the same 80/20 wrong-answer split with random scores in "
            "place of the PRM's (active's share of wrong answers without its judgement)",
        )
        parser.add_argument(
            "--bootstrap-resamples",
            type=int,
            default=2000,
            help="resamples of the interval over seeds (default 2000)",
        )
        parser.add_argument(
            "--oracle",
            choices=["synthetic", "imported", "prm"],
            default="synthetic",
            help="synthetic: the world's known step correctness; imported: labelings in the "
            "database; prm: a PRM labels (negative when P(negative) > 20%%)",
        )
        parser.add_argument(
            "--oracle-checkpoint",
            help="PRM checkpoint for --oracle prm; without it a larger PRM is first trained on a "
            "separate synthetic world",
        )
        parser.add_argument(
            "--oracle-problems",
            type=int,
            help="synthetic problems that train the labeling PRM for --oracle prm "
            f"(default {DEFAULTS['oracle_problems']})",
        )
        parser.add_argument(
            "--heldout-fraction",
            type=float,
            default=0.2,
            help="--oracle imported: share of problems held out for evaluation",
        )
        parser.add_argument(
            "--epochs",
            type=float,
            help=f"epochs of each round's training (default {DEFAULTS['epochs']:g})",
        )
        parser.add_argument(
            "--learning-rate", type=float, default=3e-3, help="peak learning rate (default 3e-3)"
        )
        parser.add_argument(
            "--wrong-share",
            type=float,
            default=0.8,
            help="share of an active batch taken by convincing wrong answers (default 0.8)",
        )
        parser.add_argument(
            "--per-problem-cap",
            type=int,
            default=2,
            help="at most this many solutions of one problem per active batch (0 = no cap)",
        )
        parser.add_argument(
            "--metric",
            choices=["step_auroc", "best_of_n"],
            default="step_auroc",
            help="quality the headline efficiency ratio compares",
        )
        parser.add_argument(
            "--backbone-hidden",
            type=int,
            help=f"hidden size of the tiny backbone (default {DEFAULTS['backbone_hidden']})",
        )
        parser.add_argument(
            "--backbone-layers",
            type=int,
            help=f"layers of the tiny backbone (default {DEFAULTS['backbone_layers']})",
        )
        parser.add_argument(
            "--base-model",
            help="local HF model directory to fine-tune each round instead of building the tiny "
            "backbone (its tokenizer only knows the synthetic world's words: use this for "
            "--oracle imported on real text)",
        )
        parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
        parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
        parser.add_argument(
            "--out", default="var/simulation", help="output folder (default var/simulation)"
        )
        parser.add_argument("--quick", action="store_true", help="a tiny run for tests and demos")

    def handle(self, *args: Any, **options: Any) -> None:
        import torch
        from transformers.utils import logging as transformers_logging

        from active_learning import simulation as sim

        # One fresh model per round: the per-load progress bars would drown the round lines.
        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()

        preset = QUICK if options["quick"] else DEFAULTS
        knobs = {
            key: options.get(key) if options.get(key) is not None else preset[key] for key in preset
        }
        for key in (
            "rounds",
            "per_round",
            "pool_problems",
            "samples_per_problem",
            "heldout_problems",
            "oracle_problems",
        ):
            if knobs[key] < 1:
                raise CommandError(f"--{key.replace('_', '-')} must be at least 1")
        if not 0 <= options["wrong_share"] <= 1:
            raise CommandError("--wrong-share must be between 0 and 1")
        if not 0 < options["heldout_fraction"] < 1:
            raise CommandError("--heldout-fraction must be between 0 and 1")
        if options["oracle"] != "prm" and options["oracle_checkpoint"]:
            raise CommandError("--oracle-checkpoint only goes with --oracle prm")

        if options["per_problem_cap"] < 0:
            raise CommandError("--per-problem-cap must be 0 (no cap) or more")
        if knobs["backbone_hidden"] < 8 or knobs["backbone_hidden"] % 4:
            raise CommandError("--backbone-hidden must be a multiple of 4 (4 heads), at least 8")
        if knobs["backbone_layers"] < 1:
            raise CommandError("--backbone-layers must be at least 1")
        if options["base_model"] and not Path(options["base_model"]).is_dir():
            raise CommandError(f"--base-model {options['base_model']} is not a directory")
        if knobs["epochs"] <= 0:
            raise CommandError("--epochs must be positive")
        if options["learning_rate"] <= 0:
            raise CommandError("--learning-rate must be positive")

        if options["bootstrap_resamples"] < 1:
            raise CommandError("--bootstrap-resamples must be at least 1")
        seeds = options["seeds"] or [options["seed"]]
        if len(set(seeds)) != len(seeds):
            raise CommandError("--seeds must not repeat a seed")
        torch.set_num_threads(max(1, options["threads"]))
        out = Path(options["out"])
        started = time.perf_counter()

        # Cheap checks and the worlds first: a bad budget fails before any model is built (and
        # imported labelings are read before the arms move to the scratch database).
        worlds = {}
        for seed in seeds:
            settings = sim.SimulationSettings(
                rounds=knobs["rounds"],
                per_round=knobs["per_round"],
                seed=seed,
                metric=options["metric"],
                control=options["control"],
            )
            pool, heldout, source = self._world(options, knobs, seed)
            try:
                sim.check_budget(settings, pool_size=len(pool), heldout_size=len(heldout))
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            worlds[seed] = (settings, pool, heldout, source)

        results = []
        with scratch_database() as database:
            self.stdout.write(f"the arms run in the scratch database {database}")
            for seed in seeds:
                target = out / f"seed-{seed}" if options["seeds"] else out
                results.append(self._run_seed(sim, options, knobs, worlds[seed], target))
        if options["seeds"]:
            summary = sim.summarize_seeds(results, resamples=options["bootstrap_resamples"])
            path = sim.write_summary(summary, results, out)
            for line in summary.describe().splitlines():
                self.stdout.write(line)
            self.stdout.write(f"summary: {path.with_suffix('.md')}")
        self.stdout.write(f"wall time {time.perf_counter() - started:.1f}s")

    def _world(self, options, knobs, seed: int) -> tuple[list[Any], list[Any], str]:
        from training.prm.synthetic import make_world

        if options["oracle"] == "imported":
            pool, heldout = load_imported_world(
                seed=seed, heldout_fraction=options["heldout_fraction"]
            )
            # Rounds select among graded solutions only (selection.candidate_pool).
            pool = [s for s in pool if s.is_correct is not None]
            return pool, heldout, f"{len(pool)} imported graded solutions"
        pool = make_world(knobs["pool_problems"], knobs["samples_per_problem"], seed=seed)
        heldout = make_world(
            knobs["heldout_problems"], knobs["samples_per_problem"], seed=seed + HELDOUT_SEED
        )
        _prefix_problem_ids(heldout, "heldout:")
        source = (
            f"synthetic world: {knobs['pool_problems']} problems x "
            f"{knobs['samples_per_problem']} samples"
        )
        return pool, heldout, source

    def _run_seed(self, sim, options, knobs, world, out: Path):
        import torch

        from active_learning.simulation_db import database_store
        from training.prm.evaluate import step_metrics
        from training.prm.synthetic import build_tiny_backbone

        settings, pool, heldout, source = world
        seed = settings.seed
        sim.set_seed(seed)
        torch.manual_seed(seed)
        with tempfile.TemporaryDirectory(prefix="stepwise-simulation-") as tmp:
            workdir = Path(tmp)
            backbone = options["base_model"] or build_tiny_backbone(
                str(workdir / "backbone"),
                seed=seed,
                hidden_size=knobs["backbone_hidden"],
                num_layers=knobs["backbone_layers"],
            )
            training = sim.TrainingKnobs(
                backbone_dir=backbone,
                epochs=knobs["epochs"],
                learning_rate=options["learning_rate"],
                device=options["device"],
            )
            oracle: Any = sim.KnownCorrectnessOracle()
            if options["oracle"] == "prm":
                oracle = self._prm_oracle(sim, options, knobs, training, workdir, seed)
                # Held-out quality is measured against the labeler's own labels.
                labels = oracle.label(heldout)
                heldout = [_with_ratings(s, r) for s, r in zip(heldout, labels, strict=True)]

            self.stdout.write(
                f"seed {seed}: simulating {knobs['rounds']} rounds x {knobs['per_round']} "
                f"solutions per arm on {source}; held-out {len(heldout)} solutions; "
                f"oracle {options['oracle']}"
            )
            result = sim.simulate(
                pool=pool,
                heldout=heldout,
                oracle=oracle,
                trainer=sim.default_trainer(training),
                stores=database_store(
                    sim.SelectionParams(
                        wrong_share=options["wrong_share"],
                        per_problem_cap=options["per_problem_cap"] or None,
                    )
                ),
                step_metrics=step_metrics,
                settings=settings,
                workdir=workdir,
                log=self.stdout.write,
            )

        title = (
            f"simulate_rounds --oracle {options['oracle']} --seed {seed}: {source}, "
            f"{knobs['rounds']} rounds x {knobs['per_round']}"
        )
        paths = sim.write_report(result, out, title=title)
        self.stdout.write(f"data efficiency ({settings.metric}): {result.ratio().describe()}")
        for kind, path in paths.items():
            self.stdout.write(f"{kind}: {path}")
        return result

    def _prm_oracle(self, sim, options, knobs, training, workdir: Path, seed: int):
        from training.prm.score import RewardModelScorer
        from training.prm.synthetic import make_world

        checkpoint = options["oracle_checkpoint"]
        if checkpoint:
            if not Path(checkpoint).is_dir():
                raise CommandError(f"--oracle-checkpoint {checkpoint} is not a directory")
            return sim.PRMOracle(
                RewardModelScorer.from_checkpoint(checkpoint, device=options["device"])
            )
        # The stand-in for PRM_large: same tiny backbone and recipe, several times the data of
        # a whole arm (100 problems x 8 samples against 150 labeled solutions by default).
        world = make_world(
            knobs["oracle_problems"], knobs["samples_per_problem"], seed=seed + ORACLE_SEED
        )
        labeled = [_with_ratings(s, sim.phase2_ratings(s.ratings)) for s in world]
        self.stdout.write(f"training the labeling PRM on {len(labeled)} synthetic solutions")
        return sim.PRMOracle(sim.default_trainer(training)(labeled, seed, workdir / "oracle"))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, migrated database next to the configured one, used as the default connection
    while the block runs and dropped afterwards (also when the block fails).

    The name carries the process id, so runs on one server never share one.
    """
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    original = connection.settings_dict["NAME"]
    name = f"{original}_sim_{os.getpid()}"[:63]
    connection.close()
    try:
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any refusal gets the same advice
        raise CommandError(
            f"could not create the scratch database {name} ({exc}); the simulation needs a "
            "Postgres role that may create databases"
        ) from exc
    connection.settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield name
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _with_ratings(solution: Any, ratings: list[int]) -> Any:
    import dataclasses

    return dataclasses.replace(solution, ratings=list(ratings))


def _prefix_problem_ids(solutions: list[Any], prefix: str) -> None:
    # The held-out world is drawn with another seed but may number its problems the same way.
    for solution in solutions:
        solution.problem_id = f"{prefix}{solution.problem_id}"


def load_imported_world(*, seed: int, heldout_fraction: float) -> tuple[list[Any], list[Any]]:
    """Solutions with a labeling in the database, as (pool, held-out), split by problem.

    A step's rating is that of the labeled completion whose text is the step (completion 0 for
    pre-generated solutions; the chosen or human completion for phase-1 trajectories); the first
    labeling of a solution (by id) wins. Screening items are left out.
    """
    from training.prm.data import LabeledSolution

    first_labeling: dict[int, int] = {}
    for labeling_id, solution_id in (
        Labeling.objects.filter(is_screening=False).order_by("id").values_list("id", "solution_id")
    ):
        first_labeling.setdefault(solution_id, labeling_id)
    if not first_labeling:
        raise CommandError("--oracle imported: no labelings in the database (import PRM800K first)")

    ratings_by_labeling: dict[int, dict[int, int | None]] = {}
    labeled_steps = (
        LabeledStep.objects.filter(labeling_id__in=first_labeling.values())
        .prefetch_related("completions")
        .order_by("labeling_id", "position")
    )
    step_texts: dict[int, dict[int, str]] = {}
    solutions = {
        s.id: s
        for s in Solution.objects.filter(id__in=first_labeling)
        .select_related("problem")
        .prefetch_related("steps")
    }
    for solution in solutions.values():
        step_texts[solution.id] = {step.position: step.text for step in solution.steps.all()}
    labeling_solution = {lid: sid for sid, lid in first_labeling.items()}
    for labeled_step in labeled_steps:
        texts = step_texts[labeling_solution[labeled_step.labeling_id]]
        text = texts.get(labeled_step.position)
        rating = None
        for completion in labeled_step.completions.all():
            if completion.text == text:
                rating = completion.rating
                break
        else:
            if labeled_step.has_human_completion and labeled_step.human_completion_text == text:
                rating = labeled_step.human_completion_rating
        ratings_by_labeling.setdefault(labeled_step.labeling_id, {})[labeled_step.position] = rating

    world: list[Any] = []
    for solution_id in sorted(first_labeling):
        solution = solutions[solution_id]
        positions = sorted(step_texts[solution_id])
        by_position = ratings_by_labeling.get(first_labeling[solution_id], {})
        world.append(
            LabeledSolution(
                problem=solution.problem.text,
                steps=[step_texts[solution_id][p] for p in positions],
                ratings=[by_position.get(p) for p in positions],
                problem_id=str(solution.problem_id),
                is_correct=None
                if solution.grade == Solution.Grade.UNGRADED
                else solution.grade == Solution.Grade.CORRECT,
            )
        )
    problems = sorted({s.problem_id for s in world})
    held = {
        pid
        for pid in problems
        if int(hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest(), 16) % 10_000
        < heldout_fraction * 10_000
    }
    if not held or len(held) == len(problems):
        # Too few problems for the hash split to land on both sides: hold out a seeded share.
        shuffled = list(problems)
        random.Random(seed).shuffle(shuffled)
        held = set(shuffled[: max(1, round(len(problems) * heldout_fraction))])
    if len(held) == len(problems):
        raise CommandError("--oracle imported needs labelings of at least two problems")
    pool = [s for s in world if s.problem_id not in held]
    heldout = [s for s in world if s.problem_id in held]
    return pool, heldout
