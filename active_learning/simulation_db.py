"""The simulation's arms on the platform's own pieces: tables, SQL selection, training-data builder.

``simulation.simulate`` asks each arm's store to select, to record labels and for training
data. ``DatabaseStore`` answers with what a real round uses:

- the pool is written as ``Problem`` / ``Solution`` / ``Step`` rows (graded from the world's
  known correctness);
- a batch is chosen by ``selection.select_from_pool`` over ``selection.candidate_pool`` (graded,
  never labeled, in no live task; with a PRM, only solutions it scored). The arm's latest scores
  are written as ``SolutionScore`` rows of a ``PRMVersion`` made for the round, the way
  ``training.services.score_solutions`` writes them;
- labels are written as ``Labeling`` / ``LabeledStep`` / ``LabeledCompletion`` rows, a phase-2
  labeling of the solution's own steps (source ``simulation``);
- training data comes from ``training.datasets.build_training_data``, the builder training
  runs use (no held-out split: the simulation's held-out set is separate).

Everything an arm writes lives in one transaction that is rolled back when the arm ends, so
nothing is kept and the two arms never see each other's labels. What differs from a live round,
and why: tasks and leases are skipped (the oracle labels at once); candidates are renamed to
their pool index by a join on the real pool query, so the seeded ``uniform`` key
(md5 of seed and id) and every tie-break are the same as ``simulation.MemoryStore``'s, whatever
ids the database hands out (a run is then repeatable); and the builder's output is kept to the
arm's own problems, so labelings already in the database cannot leak in. Solutions and problem
texts must be new to the database (its unique constraints): ``simulate_rounds`` runs in a
scratch database for that reason.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from active_learning.selection import PoolQuery, candidate_pool, select_from_pool
from active_learning.simulation import ArmStore, SelectionParams, StoreFactory
from labeling.models import (
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    Problem,
    Solution,
    Step,
)
from training.datasets import build_training_data
from training.models import PRMVersion, SolutionScore

ORACLE_USERNAME = "simulation-oracle"
BULK = 2000


class DatabaseStore:
    """One arm's pool, scores and labels in the platform's tables (see the module docstring)."""

    def __init__(self, arm: str, pool: list[Any], params: SelectionParams) -> None:
        self.arm = arm
        self.pool = pool
        self.params = params
        self.run = uuid.uuid4().hex[:12]
        self.solution_ids: list[int] = []  # pool index -> Solution id
        self.problem_ids: set[str] = set()  # as the builder writes them: str(Problem.pk)
        self.labeler: Labeler | None = None
        self.rounds = 0

    # ------------------------------------------------------------------------- the pool

    def load(self) -> None:
        user, _ = get_user_model().objects.get_or_create(username=ORACLE_USERNAME)
        self.labeler, _ = Labeler.objects.get_or_create(user=user)
        # A problem per distinct text (the table's unique key), in pool order.
        answers = {
            s.problem: str(s.answer) for s in self.pool if s.is_correct and s.answer is not None
        }
        problems: dict[str, Problem] = {}
        for solution in self.pool:
            if solution.problem not in problems:
                problems[solution.problem] = Problem(
                    text=solution.problem, reference_answer=answers.get(solution.problem, "")
                )
        Problem.objects.bulk_create(problems.values(), batch_size=BULK)
        self.problem_ids = {str(p.pk) for p in problems.values()}
        grade = {True: Solution.Grade.CORRECT, False: Solution.Grade.WRONG}
        rows = [
            Solution(
                problem=problems[s.problem],
                final_answer=s.answer,
                grade=grade.get(s.is_correct, Solution.Grade.UNGRADED),
                source="simulation",
                # One row per pool entry, even when two samples read the same: the pool is the
                # unit the simulation counts in.
                fingerprint=hashlib.sha256(f"simulation:{self.run}:{i}".encode()).hexdigest(),
                num_steps=len(s.steps),
            )
            for i, s in enumerate(self.pool)
        ]
        Solution.objects.bulk_create(rows, batch_size=BULK)
        self.solution_ids = [row.pk for row in rows]
        Step.objects.bulk_create(
            (
                Step(solution_id=sid, position=p, text=text)
                for sid, s in zip(self.solution_ids, self.pool, strict=True)
                for p, text in enumerate(s.steps)
            ),
            batch_size=BULK,
        )

    # ---------------------------------------------------------------------- selection

    def _by_pool_index(self, pool: PoolQuery) -> PoolQuery:
        """The real pool query, its candidates renamed to their pool index (and kept to this
        arm's solutions)."""
        return PoolQuery(
            f"""SELECT m.pool_index AS solution_id, c.problem_id, c.score, c.is_wrong,
                       c.step_probs
                FROM ({pool.sql}) c
                JOIN unnest(%s::bigint[], %s::bigint[]) AS m (solution_id, pool_index)
                  ON m.solution_id = c.solution_id""",
            (*pool.params, self.solution_ids, list(range(len(self.solution_ids)))),
            scored=pool.scored,
        )

    def _write_scores(self, pool_ids: list[int], scores: list[Any], model_dir: str) -> PRMVersion:
        self.rounds += 1
        version = PRMVersion.objects.create(
            name=f"simulation-{self.arm}-{self.run}-{self.rounds}",
            base_model="simulation",
            state=PRMVersion.State.READY,
            checkpoint_path=model_dir or "(simulation)",
        )
        SolutionScore.objects.bulk_create(
            (
                SolutionScore(
                    prm_version=version,
                    solution_id=self.solution_ids[i],
                    score=float(sc.score),
                    step_probabilities=[[float(p) for p in probs] for probs in sc.step_probs],
                )
                for i, sc in zip(pool_ids, scores, strict=True)
            ),
            batch_size=BULK,
        )
        return version

    def select(
        self,
        strategy: str,
        pool_ids: list[int],
        scores: list[Any] | None,
        size: int,
        seed: int,
        *,
        model_dir: str = "",
    ) -> list[int]:
        if scores is None:
            pool = candidate_pool(prm_version_id=None)
        else:
            version = self._write_scores(pool_ids, scores, model_dir)
            pool = candidate_pool(prm_version_id=version.id)
        picks = select_from_pool(
            self._by_pool_index(pool), size, strategy, self.params.strategy_params(strategy, seed)
        )
        return [p.solution_id for p in picks]

    # ------------------------------------------------------------------------- labels

    def record(self, pool_ids: list[int], ratings: list[list[int]]) -> None:
        now = timezone.now()
        labelings = [
            Labeling(
                solution_id=self.solution_ids[i],
                labeler=self.labeler,
                finish_reason=_finish_reason(labels),
                timestamp=now,
                source=Labeling.Source.SIMULATION,
            )
            for i, labels in zip(pool_ids, ratings, strict=True)
        ]
        Labeling.objects.bulk_create(labelings, batch_size=BULK)
        steps = [
            (LabeledStep(labeling=labeling, position=p), self.pool[i].steps[p], rating)
            for labeling, i, labels in zip(labelings, pool_ids, ratings, strict=True)
            for p, rating in enumerate(labels)
        ]
        LabeledStep.objects.bulk_create([s for s, _, _ in steps], batch_size=BULK)
        # Completion 0 is the solution's own step, as a phase-2 line stores it.
        LabeledCompletion.objects.bulk_create(
            (
                LabeledCompletion(labeled_step=step, position=0, text=text, rating=rating)
                for step, text, rating in steps
            ),
            batch_size=BULK,
        )

    def training_data(self) -> list[Any]:
        data = build_training_data(heldout_fraction=0.0)
        return [s for s in data.train if s.problem_id in self.problem_ids]


def _finish_reason(labels: list[int]) -> str:
    if -1 in labels:
        return Labeling.FinishReason.FOUND_ERROR
    return Labeling.FinishReason.SOLUTION if labels else Labeling.FinishReason.GIVE_UP


def database_store(params: SelectionParams | None = None) -> StoreFactory:
    """Each arm in its own transaction on the current database, rolled back when it ends."""

    @contextmanager
    def open_store(arm: str, pool: list[Any]) -> Iterator[ArmStore]:
        with transaction.atomic():
            store = DatabaseStore(arm, pool, params or SelectionParams())
            store.load()
            try:
                yield store
            finally:
                transaction.set_rollback(True)

    return open_store
