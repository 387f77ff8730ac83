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
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from active_learning.stats import BootstrapInterval, geometric_mean, percentile_bootstrap
from active_learning.strategies import DEFAULT_WRONG_SHARE, Candidate
from active_learning.strategies import select as select_strategy
from training.prm.evaluate import top_pick_credit

# A negative step is one the labeling PRM gives more than this probability of being negative
# (the paper's rule for letting PRM_large stand in for people).
PRM_ORACLE_NEGATIVE_THRESHOLD = 0.2

ARMS = ("active", "uniform")
CONTROL_ARM = "wrong_random"
METRICS = ("step_auroc", "best_of_n")


class Scorer(Protocol):
    def score(self, items: Sequence[tuple[str, list[str]]]) -> list[Any]: ...


# (labeled solutions so far, seed, work directory) -> a scorer for the freshly trained model
Trainer = Callable[[list[Any], int, Path], Scorer]


class ArmStore(Protocol):
    """Where one arm keeps its labels and how it picks the next batch.

    Candidates are named by their index in the pool.
    """

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
        """Up to ``size`` of the unlabeled ``pool_ids`` (most wanted first); ``scores`` are the
        arm's latest PRM scores of those candidates, None when the arm has no PRM yet, and
        ``model_dir`` where that PRM's trainer wrote it."""
        ...

    def record(self, pool_ids: list[int], ratings: list[list[int]]) -> None:
        """Store the oracle's ratings of these pool solutions."""
        ...

    def training_data(self) -> list[Any]:
        """Every label recorded so far, as training examples (``LabeledSolution``)."""
        ...


# (arm name, pool) -> a context in which the arm's store lives (the database store rolls back)
StoreFactory = Callable[[str, list[Any]], AbstractContextManager[ArmStore]]


@dataclass(frozen=True)
class SelectionParams:
    """The active arm's selection: the paper's 80/20 split, at most ``per_problem_cap`` solutions
    of one problem per batch (None = no cap). Uniform batches have no cap."""

    wrong_share: float = DEFAULT_WRONG_SHARE
    per_problem_cap: int | None = 2

    def strategy_params(self, strategy: str, seed: int) -> dict[str, Any]:
        if strategy == "uniform":
            return {"seed": seed}
        if strategy == "convincing_wrong_answer":
            return {"wrong_share": self.wrong_share, "per_problem_cap": self.per_problem_cap}
        raise ValueError(f"the simulation has no {strategy!r} arm")


# ------------------------------------------------------------------------------------ oracles


def phase2_ratings(ratings: Sequence[int | None]) -> list[int]:
    """The ratings a phase-2 labeler hands in: every step up to and including the first -1.

    Labeling stops at the first unrated step too (imported labels may end early).
    """
    out: list[int] = []
    for rating in ratings:
        if rating is None:
            break
        out.append(int(rating))
        if rating == -1:
            break
    return out


def rating_from_prm(
    probs: tuple[float, float, float], *, threshold: float = PRM_ORACLE_NEGATIVE_THRESHOLD
) -> int:
    """One step's rating from a labeling PRM's (p_negative, p_neutral, p_positive).

    Negative when p_negative > threshold (strictly, as in the paper); otherwise the more likely
    of neutral and positive, positive on a tie.
    """
    p_negative, p_neutral, p_positive = probs
    if p_negative > threshold:
        return -1
    return 0 if p_neutral > p_positive else 1


class KnownCorrectnessOracle:
    """Labels with the correctness the world already knows (synthetic truth or imported labels)."""

    name = "known"

    def label(self, solutions: Sequence[Any]) -> list[list[int]]:
        return [phase2_ratings(solution.ratings) for solution in solutions]


class PRMOracle:
    """A reward model stands in for the labeler, with the paper's 20% rule."""

    name = "prm"

    def __init__(self, scorer: Scorer, *, threshold: float = PRM_ORACLE_NEGATIVE_THRESHOLD) -> None:
        self.scorer = scorer
        self.threshold = threshold

    def label(self, solutions: Sequence[Any]) -> list[list[int]]:
        if not solutions:
            return []
        scores = self.scorer.score([(s.problem, list(s.steps)) for s in solutions])
        return [
            phase2_ratings([rating_from_prm(p, threshold=self.threshold) for p in sc.step_probs])
            for sc in scores
        ]


# ------------------------------------------------------------------------- data efficiency


def _running_max(values: Sequence[float]) -> list[float]:
    best = -math.inf
    out = []
    for value in values:
        best = max(best, value)
        out.append(best)
    return out


def labels_to_reach(
    labels: Sequence[float], quality: Sequence[float], target: float
) -> float | None:
    """Fewest labels at which the piecewise-linear curve through (labels, quality) reaches target.

    The curve is first replaced by its running maximum (the platform keeps the best model so far:
    a new PRM becomes active only if it does not regress). None when it never gets there.
    """
    envelope = _running_max(quality)
    for i, value in enumerate(envelope):
        if value >= target:
            if i == 0 or envelope[i] == envelope[i - 1]:
                return float(labels[i])
            x0, x1 = labels[i - 1], labels[i]
            y0, y1 = envelope[i - 1], envelope[i]
            return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))
    return None


@dataclass
class EfficiencyRatio:
    """How many labels uniform selection needs for the quality active learning reaches."""

    target_quality: float
    active_labels: float
    uniform_labels: float | None  # None: uniform never reaches the target within its budget
    ratio: float | None
    ratio_lower_bound: float | None  # set when uniform never reaches: ratio > this

    def describe(self) -> str:
        if math.isnan(self.target_quality):
            return "undefined (a curve has no finite quality value)"
        if self.ratio is not None:
            return (
                f"{self.ratio:.2f}x (uniform needs {self.uniform_labels:.1f} labels for the "
                f"quality {self.target_quality:.4f} active reaches with {self.active_labels:.0f})"
            )
        return (
            f"> {self.ratio_lower_bound:.2f}x (uniform never reaches the quality "
            f"{self.target_quality:.4f} that active reaches with {self.active_labels:.0f} labels)"
        )


def efficiency_ratio(
    active: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float]]
) -> EfficiencyRatio:
    """Data-efficiency ratio from two curves of (labels, quality) points, in label order.

    Target = the best quality active learning reaches within its budget; active_labels = the
    labels at which it first gets there. uniform_labels = where uniform's running-max curve,
    linearly interpolated between rounds, first reaches the target. Ratio = uniform / active.
    If uniform never gets there, the ratio is only bounded below by uniform's budget / active.
    """
    if not active or not uniform:
        raise ValueError("both curves need at least one point")
    # A round whose metric is undefined (e.g. no negative held-out step) is left out.
    active = [p for p in active if math.isfinite(p[1])]
    uniform = [p for p in uniform if math.isfinite(p[1])]
    if not active or not uniform:
        return EfficiencyRatio(math.nan, math.nan, None, None, None)
    a_labels = [p[0] for p in active]
    a_quality = [p[1] for p in active]
    u_labels = [p[0] for p in uniform]
    u_quality = [p[1] for p in uniform]
    target = max(a_quality)
    active_needed = labels_to_reach(a_labels, a_quality, target)
    assert active_needed is not None  # the target is one of active's own points
    uniform_needed = labels_to_reach(u_labels, u_quality, target)
    if uniform_needed is None:
        return EfficiencyRatio(target, active_needed, None, None, u_labels[-1] / active_needed)
    return EfficiencyRatio(
        target, active_needed, uniform_needed, uniform_needed / active_needed, None
    )


def ratio_at_common_best(
    active: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float]]
) -> EfficiencyRatio:
    """Labels each arm needs for the best quality BOTH arms reach (the lower of the two bests).

    Both arms always get there, so the ratio is never censored, and swapping the arms gives
    exactly 1 / ratio. That makes it the fair per-seed figure to average: ``efficiency_ratio``
    aims at active's best, which uniform often never reaches, and counting those seeds at their
    lower bound (>= 1) pushes the average above 1 even when the arms are alike. Running maximum
    and interpolation as in ``labels_to_reach``.
    """
    if not active or not uniform:
        raise ValueError("both curves need at least one point")
    active = [p for p in active if math.isfinite(p[1])]
    uniform = [p for p in uniform if math.isfinite(p[1])]
    if not active or not uniform:
        return EfficiencyRatio(math.nan, math.nan, None, None, None)
    target = min(max(q for _, q in active), max(q for _, q in uniform))
    active_needed = labels_to_reach([x for x, _ in active], [q for _, q in active], target)
    uniform_needed = labels_to_reach([x for x, _ in uniform], [q for _, q in uniform], target)
    assert active_needed is not None and uniform_needed is not None
    return EfficiencyRatio(
        target, active_needed, uniform_needed, uniform_needed / active_needed, None
    )


def ratio_at_uniform_best(
    active: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float]]
) -> str:
    """The ratio read the other way round: at the best quality uniform reaches within its budget,
    how many labels each arm needs. Always defined when active learning gets there at all, so it
    complements ``efficiency_ratio`` when that is only a lower bound.
    """
    active = [p for p in active if math.isfinite(p[1])]
    uniform = [p for p in uniform if math.isfinite(p[1])]
    if not active or not uniform:
        return "undefined (a curve has no finite quality value)"
    target = max(q for _, q in uniform)
    uniform_needed = labels_to_reach([x for x, _ in uniform], [q for _, q in uniform], target)
    active_needed = labels_to_reach([x for x, _ in active], [q for _, q in active], target)
    assert uniform_needed is not None
    if active_needed is None:
        return (
            f"active never reaches uniform's best {target:.4f} "
            f"(uniform gets there with {uniform_needed:.0f} labels)"
        )
    return (
        f"{uniform_needed / active_needed:.2f}x (uniform's best {target:.4f}: uniform needs "
        f"{uniform_needed:.0f} labels, active {active_needed:.1f})"
    )


@dataclass
class Comparison:
    """One pair of arms over the seeds: each seed's ratio and a bootstrap interval."""

    arm: str  # the arm whose efficiency is measured ...
    baseline: str  # ... against this one
    reading: str  # "common best" or "active's best"
    ratios: list[EfficiencyRatio]
    interval: BootstrapInterval | None

    @property
    def values(self) -> list[float]:
        return [value for r in self.ratios if (value := _ratio_value(r)) is not None]

    @property
    def censored(self) -> int:
        return sum(1 for r in self.ratios if r.ratio is None and r.ratio_lower_bound is not None)

    def describe(self) -> str:
        head = f"{self.arm} vs {self.baseline}, at {self.reading}"
        if self.interval is None:
            return f"{head}: {len(self.values)} seed(s) with a ratio, too few for an interval"
        verdict = "excludes" if self.interval.excludes(1.0) else "includes"
        censored = (
            f"; {self.censored} seed(s) counted at their lower bound" if self.censored else ""
        )
        return (
            f"{head}: geometric mean {self.interval.describe()}, the interval {verdict} 1.0"
            f"{censored}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "baseline": self.baseline,
            "reading": self.reading,
            "ratios": [dataclasses.asdict(r) for r in self.ratios],
            "values": self.values,
            "censored": self.censored,
            "interval": None if self.interval is None else dataclasses.asdict(self.interval),
        }


def _ratio_value(ratio: EfficiencyRatio) -> float | None:
    return ratio.ratio if ratio.ratio is not None else ratio.ratio_lower_bound


@dataclass
class SeedsSummary:
    """Paired seeds: the data-efficiency ratio per seed and a percentile bootstrap interval of
    the geometric mean over seeds, for each comparison.

    Headline: active vs uniform at the best quality both reach (``ratio_at_common_best``:
    never censored, symmetric between the arms). Also given: the same pair read at active's
    best (``efficiency_ratio``; a seed where uniform never gets there counts with its lower
    bound), and with the control arm, active vs wrong_random and wrong_random vs uniform.
    """

    metric: str
    seeds: list[int]
    comparisons: list[Comparison]

    @property
    def headline(self) -> Comparison:
        return self.comparisons[0]

    def describe(self) -> str:
        return "\n".join(
            f"data efficiency on {self.metric} over {len(self.seeds)} seeds, {c.describe()}"
            for c in self.comparisons
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "seeds": self.seeds,
            "comparisons": [c.as_dict() for c in self.comparisons],
        }


def summarize_seeds(
    results: Sequence[SimulationResult],
    metric: str | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> SeedsSummary:
    """Per-seed efficiency ratios of paired runs and the bootstrap interval of their mean."""
    if not results:
        raise ValueError("no simulation results to summarize")
    metric = metric or results[0].settings.metric
    pairs = [("active", "uniform", "common best"), ("active", "uniform", "active's best")]
    if all(r.settings.control for r in results):
        pairs += [
            ("active", CONTROL_ARM, "common best"),
            (CONTROL_ARM, "uniform", "common best"),
        ]
    comparisons = []
    for arm, baseline, reading in pairs:
        measure = ratio_at_common_best if reading == "common best" else efficiency_ratio
        ratios = [measure(r.curve(arm, metric), r.curve(baseline, metric)) for r in results]
        comparison = Comparison(arm, baseline, reading, ratios, None)
        if len(comparison.values) >= 2:
            comparison.interval = percentile_bootstrap(
                comparison.values, geometric_mean, resamples=resamples, confidence=confidence
            )
        comparisons.append(comparison)
    return SeedsSummary(
        metric=metric, seeds=[r.settings.seed for r in results], comparisons=comparisons
    )


def write_summary(summary: SeedsSummary, results: Sequence[SimulationResult], out: Path) -> Path:
    """summary.md and summary.json under out: every comparison per seed, and the intervals."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Data efficiency over {len(results)} paired seeds ({summary.metric})", ""]
    for comparison in summary.comparisons:
        lines += [
            f"## {comparison.arm} vs {comparison.baseline}, at {comparison.reading}",
            "",
            "| seed | ratio |",
            "|---|---|",
        ]
        for result, ratio in zip(results, comparison.ratios, strict=True):
            text = ratio.describe().replace("active", comparison.arm)
            text = text.replace("uniform", comparison.baseline)
            lines.append(f"| {result.settings.seed} | {text} |")
        lines += ["", comparison.describe(), ""]
    (out / "summary.md").write_text("\n".join(lines))
    path = out / "summary.json"
    path.write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n")
    return path


# ----------------------------------------------------------------------------- evaluation


def best_of_n_accuracy(heldout: Sequence[Any], scores: Sequence[Any]) -> float:
    """Share of held-out problems whose top-scored sample has a correct final answer.

    N is the number of samples the held-out set has per problem; a tie counts as a uniform random
    pick among the tied samples (`training.prm.evaluate.top_pick_credit`, best_of_n's rule).
    """
    groups: dict[str, tuple[list[float], list[bool]]] = {}
    for solution, sc in zip(heldout, scores, strict=True):
        values, correct = groups.setdefault(solution.problem_id or solution.problem, ([], []))
        values.append(sc.score)
        correct.append(bool(solution.is_correct))
    if not groups:
        return float("nan")
    return sum(top_pick_credit(v, c) for v, c in groups.values()) / len(groups)


def evaluate(
    scorer: Scorer,
    heldout: Sequence[Any],
    step_metrics: Callable[[list[Any], list[Any]], dict],
) -> dict[str, float]:
    scores = scorer.score([(s.problem, list(s.steps)) for s in heldout])
    metrics = step_metrics(list(scores), list(heldout))
    return {
        "step_auroc": float(metrics.get("step_auroc", float("nan"))),
        "best_of_n": best_of_n_accuracy(heldout, scores),
    }


# ---------------------------------------------------------------------------------- loop


@dataclass
class SimulationSettings:
    rounds: int = 5
    per_round: int = 30
    seed: int = 0
    metric: str = "step_auroc"  # which quality the efficiency ratio compares
    control: bool = False  # also run the "wrong_random" arm

    @property
    def arms(self) -> tuple[str, ...]:
        return (*ARMS, CONTROL_ARM) if self.control else ARMS

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")
        if self.per_round < 1:
            raise ValueError("per_round must be at least 1")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}")


@dataclass
class RoundResult:
    arm: str
    round: int
    strategy: str
    solutions_labeled: int
    steps_labeled: int
    wrong_answer_share: float  # of this round's batch: how many had a wrong final answer
    negative_share: float  # of this round's batch: how many got a negative step from the oracle
    step_auroc: float
    best_of_n: float
    train_seconds: float


@dataclass
class SimulationResult:
    settings: SimulationSettings
    rows: list[RoundResult] = field(default_factory=list)

    def curve(self, arm: str, metric: str | None = None) -> list[tuple[float, float]]:
        metric = metric or self.settings.metric
        return [
            (float(r.solutions_labeled), float(getattr(r, metric)))
            for r in self.rows
            if r.arm == arm
        ]

    def ratio(self, metric: str | None = None) -> EfficiencyRatio:
        return efficiency_ratio(self.curve("active", metric), self.curve("uniform", metric))


def check_budget(settings: SimulationSettings, *, pool_size: int, heldout_size: int) -> None:
    """Each arm labels rounds x per_round distinct solutions, so the pool must hold them."""
    if settings.per_round * settings.rounds > pool_size:
        raise ValueError(
            f"the pool has {pool_size} solutions, fewer than rounds x per_round = "
            f"{settings.rounds * settings.per_round}"
        )
    if heldout_size < 1:
        raise ValueError("the held-out set is empty")


@dataclass(frozen=True)
class RandomScore:
    """A stand-in PRM score for the control arm: no step probabilities, a seeded random value."""

    score: float
    step_probs: tuple = ()


def random_scores(count: int, seed: int) -> list[RandomScore]:
    rng = random.Random(f"control:{seed}")
    return [RandomScore(rng.random()) for _ in range(count)]


def simulate(
    *,
    pool: list[Any],
    heldout: list[Any],
    oracle: Any,
    trainer: Trainer,
    stores: StoreFactory,
    step_metrics: Callable[[list[Any], list[Any]], dict],
    settings: SimulationSettings,
    workdir: Path,
    log: Callable[[str], None] = lambda message: None,
) -> SimulationResult:
    """Run both arms and return one row per (arm, round). Deterministic for a given seed.

    Each arm gets its own store from ``stores``; the second arm's round 1 records the first
    arm's round-1 batch and reuses its model, so the two arms start from the same data.
    """
    check_budget(settings, pool_size=len(pool), heldout_size=len(heldout))
    result = SimulationResult(settings=settings)
    # Round 1 of the first arm: (picked pool ids, their labels, row, trained scorer).
    shared_first: tuple[list[int], list[list[int]], RoundResult, Scorer] | None = None

    for arm in settings.arms:
        with stores(arm, pool) as store:
            labeled_ids: list[int] = []
            steps_labeled = 0
            scorer: Scorer | None = None
            model_dir = ""
            for round_number in range(1, settings.rounds + 1):
                round_seed = settings.seed * 1000 + round_number
                if round_number == 1 and shared_first is not None:
                    # Same seed, same uniform pick: the other arm's round 1, recorded again.
                    picked, labels, first_row, scorer = shared_first
                    model_dir = str(workdir / f"{ARMS[0]}-round1")
                    store.record(list(picked), [list(r) for r in labels])
                    labeled_ids = list(picked)
                    steps_labeled = first_row.steps_labeled
                    row = dataclasses.replace(first_row, arm=arm)
                    result.rows.append(row)
                    log(_row_line(row))
                    continue
                taken = set(labeled_ids)
                remaining = [i for i in range(len(pool)) if i not in taken]
                scores = None
                strategy = "uniform"
                if arm == "active" and scorer is not None:
                    strategy = "convincing_wrong_answer"
                    scores = list(
                        scorer.score([(pool[i].problem, list(pool[i].steps)) for i in remaining])
                    )
                elif arm == CONTROL_ARM:
                    strategy = "convincing_wrong_answer"
                    scores = random_scores(len(remaining), round_seed)
                picked = store.select(
                    strategy,
                    remaining,
                    scores,
                    settings.per_round,
                    round_seed,
                    model_dir=model_dir,
                )
                if (
                    len(set(picked)) != len(picked)
                    or len(picked) > settings.per_round
                    or not taken.isdisjoint(picked)
                    or not set(picked) <= set(remaining)
                ):
                    raise ValueError(
                        f"the {strategy} selection returned an invalid batch: {picked}"
                    )
                batch = [pool[i] for i in picked]
                labels = [list(r) for r in oracle.label(batch)]
                store.record(list(picked), labels)
                labeled_ids.extend(picked)
                steps_labeled += sum(len(r) for r in labels)
                training = store.training_data()

                started = time.perf_counter()
                model_dir = str(workdir / f"{arm}-round{round_number}")
                scorer = trainer(training, settings.seed, Path(model_dir))
                train_seconds = time.perf_counter() - started
                quality = evaluate(scorer, heldout, step_metrics)
                row = RoundResult(
                    arm=arm,
                    round=round_number,
                    strategy=strategy,
                    solutions_labeled=len(labeled_ids),
                    steps_labeled=steps_labeled,
                    wrong_answer_share=_share(batch, lambda s: s.is_correct is False),
                    negative_share=_share(labels, lambda r: -1 in r),
                    step_auroc=quality["step_auroc"],
                    best_of_n=quality["best_of_n"],
                    train_seconds=round(train_seconds, 2),
                )
                result.rows.append(row)
                log(_row_line(row))
                if round_number == 1 and shared_first is None:
                    shared_first = (list(picked), labels, row, scorer)
    return result


def _share(items: Sequence[Any], predicate: Callable[[Any], bool]) -> float:
    return sum(1 for item in items if predicate(item)) / len(items) if items else 0.0


def _row_line(row: RoundResult) -> str:
    return (
        f"{row.arm:7s} round {row.round}: {row.solutions_labeled} solutions "
        f"({row.steps_labeled} steps, {row.wrong_answer_share:.0%} wrong answers) "
        f"step AUROC {row.step_auroc:.4f}  best-of-N {row.best_of_n:.3f}  "
        f"train {row.train_seconds:.1f}s"
    )


# --------------------------------------------------------------------------------- output

# Wall-clock training time varies run to run; it goes to the JSON only, so the table of a seed
# is always the same.
COLUMNS = [f.name for f in dataclasses.fields(RoundResult) if f.name != "train_seconds"]


def write_report(result: SimulationResult, out: Path, *, title: str = "") -> dict[str, Path]:
    """Write simulation.csv, simulation.md, simulation.json and simulation.png under out."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "simulation.csv",
        "markdown": out / "simulation.md",
        "json": out / "simulation.json",
        "plot": out / "simulation.png",
    }
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in result.rows:
            writer.writerow(_table_row(row))

    ratios = {metric: result.ratio(metric) for metric in METRICS}
    lines = [f"# {title}" if title else "# Simulation", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for row in result.rows:
        lines.append("| " + " | ".join(str(v) for v in _table_row(row).values()) + " |")
    lines.append("")
    for metric, ratio in ratios.items():
        marker = " (headline)" if metric == result.settings.metric else ""
        lines.append(f"- data efficiency on {metric}{marker}: {ratio.describe()}")
        reverse = ratio_at_uniform_best(
            result.curve("active", metric), result.curve("uniform", metric)
        )
        lines.append(f"  - read at uniform's best instead: {reverse}")
    paths["markdown"].write_text("\n".join(lines) + "\n")

    summary = {
        "settings": dataclasses.asdict(result.settings),
        "efficiency": {metric: dataclasses.asdict(r) for metric, r in ratios.items()},
        # full precision, so load_result reproduces the report exactly
        "rows": [dataclasses.asdict(r) for r in result.rows],
    }
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    plot_curves(result, paths["plot"], title=title)
    return paths


def load_result(path: Path) -> SimulationResult:
    """Read back a simulation.json (to redraw the table and plot without training again)."""
    data = json.loads(Path(path).read_text())
    return SimulationResult(
        settings=SimulationSettings(**data["settings"]),
        rows=[RoundResult(**row) for row in data["rows"]],
    )


def _table_row(row: RoundResult) -> dict[str, Any]:
    values = _formatted(row)
    return {key: values[key] for key in COLUMNS}


def _formatted(row: RoundResult) -> dict[str, Any]:
    values = dataclasses.asdict(row)
    for key in ("wrong_answer_share", "negative_share", "step_auroc", "best_of_n"):
        values[key] = round(values[key], 4)
    return values


def plot_curves(result: SimulationResult, path: Path, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(10, 4), dpi=100)
    styles = {
        "active": ("tab:red", "o", "active (convincing wrong answer)"),
        "uniform": ("tab:blue", "s", "uniform"),
        CONTROL_ARM: ("tab:gray", "^", "wrong answers, random order (control)"),
    }
    for ax, metric in zip(axes, METRICS, strict=True):
        for arm in result.settings.arms:
            points = result.curve(arm, metric)
            color, marker, label = styles[arm]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                color=color,
                marker=marker,
                label=label,
            )
        ax.set_xlabel("solutions labeled")
        ax.set_ylabel(
            {"step_auroc": "held-out step AUROC", "best_of_n": "held-out best-of-N accuracy"}[
                metric
            ]
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ratio = result.ratio()
    fig.suptitle(
        (title + "\n" if title else "")
        + f"data efficiency ({result.settings.metric}): {ratio.describe()}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------- defaults


@dataclass
class TrainingKnobs:
    """How each round's fresh PRM is trained (kept small: it runs once per round on CPU)."""

    backbone_dir: str
    epochs: float = 4.0
    learning_rate: float = 3e-3
    batch_tokens: int = 4096
    device: str | None = "cpu"


def default_trainer(knobs: TrainingKnobs) -> Trainer:
    """A Trainer that fine-tunes a fresh copy of the tiny backbone with training.prm."""
    from training.prm.config import TrainConfig
    from training.prm.score import RewardModelScorer
    from training.prm.train import train_reward_model

    def train(labeled: list[Any], seed: int, workdir: Path) -> Scorer:
        config = TrainConfig(
            base_model=knobs.backbone_dir,
            output_dir=str(workdir),
            objective="prm",
            epochs=knobs.epochs,
            learning_rate=knobs.learning_rate,
            batch_tokens=knobs.batch_tokens,
            seed=seed,
            device=knobs.device,
        )
        trained = train_reward_model(labeled, config)
        return RewardModelScorer.from_checkpoint(trained.checkpoint_dir, device=knobs.device)

    return train


def _candidates(solutions: list[Any], ids: list[int], scores: list[Any] | None) -> list[Candidate]:
    # Strategies key problems by int: number the problem ids in sorted order (stable per call).
    numbers = {
        pid: n for n, pid in enumerate(sorted({s.problem_id or s.problem for s in solutions}))
    }
    return [
        Candidate(
            solution_id=pool_id,
            problem_id=numbers[solution.problem_id or solution.problem],
            score=None if scores is None else float(scores[n].score),
            # An ungraded answer is not known to be wrong.
            is_wrong=solution.is_correct is False,
            step_probs=None if scores is None else scores[n].step_probs,
        )
        for n, (solution, pool_id) in enumerate(zip(solutions, ids, strict=True))
    ]


class MemoryStore:
    """An arm's labels in a Python list, selected by the pure ``strategies`` functions.

    The reference for ``simulation_db.DatabaseStore`` (same picks for the same input) and the
    fast store for tests of the loop.
    """

    def __init__(self, pool: list[Any], params: SelectionParams) -> None:
        self.pool = pool
        self.params = params
        self._training: list[Any] = []

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
        del model_dir
        if strategy != "uniform" and scores is None:
            raise ValueError(f"{strategy} needs PRM scores")
        candidates = _candidates([self.pool[i] for i in pool_ids], pool_ids, scores)
        picks = select_strategy(
            candidates, size, strategy, self.params.strategy_params(strategy, seed)
        )
        return [p.solution_id for p in picks]

    def record(self, pool_ids: list[int], ratings: list[list[int]]) -> None:
        for pool_id, labels in zip(pool_ids, ratings, strict=True):
            self._training.append(dataclasses.replace(self.pool[pool_id], ratings=list(labels)))

    def training_data(self) -> list[Any]:
        return list(self._training)


def memory_store(params: SelectionParams | None = None) -> StoreFactory:
    """Each arm keeps its labels in memory (no database)."""

    @contextmanager
    def open_store(arm: str, pool: list[Any]) -> Iterator[ArmStore]:
        del arm
        yield MemoryStore(pool, params or SelectionParams())

    return open_store


def set_seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
