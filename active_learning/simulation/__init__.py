"""Active learning against an oracle labeler: does convincing-wrong-answer selection save labels?

The loop of the paper's small-scale study, in memory and without Django:

1. A pool of candidate solutions and a disjoint held-out set (by problem) are fixed up front.
2. Each round selects ``per_round`` unlabeled solutions from the pool, has the oracle label them
   like phase 2 (steps up to and including the first negative one), trains a FRESH reward model
   on every label so far and evaluates it on the held-out set.
3. Two arms share the pool, the per-round budget and the seed: "active" selects with the
   convincing-wrong-answer strategy scored by the arm's latest PRM; "uniform" selects at random.
   Round 1 has no PRM yet, so both arms start uniform (the paper's first round is uniform too);
   with the same seed the two arms pick the same round-1 batch, so that round is trained once.
   An optional control arm, "wrong_random", takes the same 80/20 split with random scores in
   place of the PRM's: it has active's share of wrong answers without the PRM's judgement of
   which are convincing, so active against it measures the "convincing" part alone.

The data-efficiency ratio compares two quality-vs-labels curves (``ratio_at_common_best``, and
``efficiency_ratio`` read at active's best).

Training and where an arm keeps its labels are injected, so the loop itself can be tested with
hand-made parts. ``default_trainer`` wires in ``training.prm``. An arm's *store* selects, records
labels and hands back the training data: ``memory_store`` does it in Python with the pure
functions of ``active_learning.strategies``; ``active_learning.simulation_db`` does it with the
platform's own pieces (its tables, the SQL selection of ``active_learning.selection`` and the
training-data builder of ``training.datasets``), which is what ``simulate_rounds`` runs. Both
number candidates by their index in the pool, so for the same input they pick the same batch.

The package, by part: ``base`` (arms, metrics, the shapes of a trainer and a store),
``oracles``, ``loop`` (the rounds), ``evaluation``, ``efficiency`` (labels to reach a quality,
ratios), ``seeds`` (paired seeds, bootstrap intervals), ``report`` (files and plot) and
``defaults`` (the default trainer and the in-memory store). The names below are re-exported.
"""

from __future__ import annotations

from active_learning.simulation.base import (
    ARMS,
    CONTROL_ARM,
    METRICS,
    PRM_ORACLE_NEGATIVE_THRESHOLD,
    ArmStore,
    Scorer,
    SelectionParams,
    StoreFactory,
    Trainer,
)
from active_learning.simulation.defaults import (
    MemoryStore,
    TrainingKnobs,
    default_trainer,
    memory_store,
    set_seed,
)
from active_learning.simulation.efficiency import (
    EfficiencyRatio,
    efficiency_ratio,
    labels_to_reach,
    ratio_at_common_best,
    ratio_at_uniform_best,
)
from active_learning.simulation.evaluation import (
    best_of_n_accuracy,
    evaluate,
)
from active_learning.simulation.loop import (
    RandomScore,
    RoundResult,
    SimulationResult,
    SimulationSettings,
    check_budget,
    random_scores,
    simulate,
)
from active_learning.simulation.oracles import (
    KnownCorrectnessOracle,
    PRMOracle,
    phase2_ratings,
    rating_from_prm,
)
from active_learning.simulation.report import (
    COLUMNS,
    load_result,
    plot_curves,
    write_report,
)
from active_learning.simulation.seeds import (
    Comparison,
    SeedsSummary,
    summarize_seeds,
    write_summary,
)

__all__ = [
    "ARMS",
    "ArmStore",
    "COLUMNS",
    "CONTROL_ARM",
    "Comparison",
    "EfficiencyRatio",
    "KnownCorrectnessOracle",
    "METRICS",
    "MemoryStore",
    "PRMOracle",
    "PRM_ORACLE_NEGATIVE_THRESHOLD",
    "RandomScore",
    "RoundResult",
    "Scorer",
    "SeedsSummary",
    "SelectionParams",
    "SimulationResult",
    "SimulationSettings",
    "StoreFactory",
    "Trainer",
    "TrainingKnobs",
    "best_of_n_accuracy",
    "check_budget",
    "default_trainer",
    "efficiency_ratio",
    "evaluate",
    "labels_to_reach",
    "load_result",
    "memory_store",
    "phase2_ratings",
    "plot_curves",
    "random_scores",
    "rating_from_prm",
    "ratio_at_common_best",
    "ratio_at_uniform_best",
    "set_seed",
    "simulate",
    "summarize_seeds",
    "write_report",
    "write_summary",
]
