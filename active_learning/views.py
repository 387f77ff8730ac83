"""The admin console's pages. Thin: selectors read, templates render, console.ts polls the API
and posts the forms (imports, generation, training, rounds) to it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from active_learning import charts, selectors, services, strategies
from labeling.permissions import require_stepwise_admin
from training import sampling
from training import selectors as training_selectors
from training.models import PRMVersion


def _parameters(count: int | None) -> str:
    if not count:
        return "size unknown"
    if count >= 10**9:
        return f"{count / 10**9:.1f}B parameters"
    if count >= 10**6:
        return f"{count / 10**6:.1f}M parameters"
    return f"{count:,} parameters"


def _base_models() -> list[dict]:
    """The registry as the forms show it: found or missing on disk, and the model's size."""
    return [
        {"name": m.name, "path": m.path, "found": m.found, "size": _parameters(m.parameter_count)}
        for m in training_selectors.base_model_list()
    ]


def _next_version_name() -> str:
    """prm-N for an N no version has, so the train form's default name never collides."""
    taken = set(PRMVersion.objects.filter(name__startswith="prm-").values_list("name", flat=True))
    n = len(taken) + 1
    while f"prm-{n}" in taken:
        n += 1
    return f"prm-{n}"


def _train_options() -> list[dict]:
    """The launch API's training options on the train form; a blank field keeps the platform's
    default (STEPWISE_TRAIN_DEFAULTS, else the trainer's own), which the placeholder shows."""
    defaults = settings.STEPWISE_TRAIN_DEFAULTS

    def option(name: str, label: str, low: float, high: float | None = None) -> dict:
        hint = f"default {defaults[name]}" if name in defaults else "default"
        return {"name": name, "label": label, "min": low, "max": high, "placeholder": hint}

    return [
        option("epochs", "Epochs", 0.01, 100),
        option("learning_rate", "Learning rate", 0, 1),
        option("max_length", "Max tokens per solution", 8, 32768),
        option("train_layers", "Train only the top K layers (0: all)", 0),
        option("backbone_layers", "Keep the first N layers of the base model (0: all)", 0),
    ]


@login_required
def rounds_dashboard(request: HttpRequest) -> HttpResponse:
    require_stepwise_admin(request)
    per_day = selectors.labels_per_day()
    versions = PRMVersion.objects.filter(
        state__in=[PRMVersion.State.READY, PRMVersion.State.ACTIVE, PRMVersion.State.RETIRED]
    ).order_by("-created_at", "-id")
    active = training_selectors.active_prm_version()
    distribution = sorted(
        selectors.label_distribution().items(),
        key=lambda kv: (kv[0] == "none", int(kv[0]) if kv[0] != "none" else 0),
    )
    return render(
        request,
        "active_learning/console/rounds.html",
        {
            "versions": versions,
            "active_version": active,
            "training_versions": PRMVersion.objects.filter(
                state=PRMVersion.State.TRAINING
            ).order_by("-id"),
            "ready_versions": versions.filter(state=PRMVersion.State.READY),
            # Without an active PRM the form starts on the strategy that needs none.
            "default_strategy": strategies.STRATEGIES[0] if active else "uniform",
            "strategies": strategies.STRATEGIES,
            "default_wrong_share": strategies.DEFAULT_WRONG_SHARE,
            "max_size": services.MAX_ROUND_SIZE,
            "candidates": selectors.pool_summary()["candidates"],
            "labels_chart": charts.bar_chart(
                [(row["day"], row["labelings"]) for row in per_day], title="Labels per day"
            ),
            "distribution": [
                {
                    "generation": key,
                    "positive": c["1"],
                    "neutral": c["0"],
                    "negative": c["-1"],
                    "total": c["1"] + c["0"] + c["-1"],
                }
                for key, c in distribution
            ],
            "labelers": selectors.labeler_quality(),
        },
    )


@login_required
def data_dashboard(request: HttpRequest) -> HttpResponse:
    """Imports (problems, solutions, PRM800K), the generator's form and runs, and the pool."""
    require_stepwise_admin(request)
    splits = selectors.problem_splits()
    named = [row["split"] for row in splits if row["split"]]
    return render(
        request,
        "active_learning/console/data.html",
        {
            "pool": selectors.pool_summary(),
            "generators": sampling.generator_list(),
            "problem_splits": splits,
            # MATH's test split when there is one (the paper sampled it), else the first split.
            "default_split": "test" if "test" in named else (named[0] if named else ""),
            "import_max_mb": getattr(settings, "STEPWISE_IMPORT_API_MAX_BYTES", 64 * 2**20)
            // 2**20,
        },
    )


@login_required
def prm_dashboard(request: HttpRequest) -> HttpResponse:
    require_stepwise_admin(request)
    data = selectors.prm_dashboard()
    return render(
        request,
        "active_learning/console/prm.html",
        {
            "versions": data["versions"],
            "metric_labels": [m.label for m in selectors.PRM_METRICS],
            "base_models": _base_models(),
            "labelings": selectors.labelings_total(),
            "active_version": training_selectors.active_prm_version(),
            "ready_versions": [v for v in data["versions"] if v["state"] == PRMVersion.State.READY],
            "suggested_name": _next_version_name(),
            "train_options": _train_options(),
            "min_heldout_solutions": settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS,
            "min_heldout_steps": settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS,
            "charts": [
                {
                    "label": s["label"],
                    "n": s["n"],
                    "svg": charts.line_chart(s["points"], title=f"{s['label']} by generation"),
                }
                for s in data["series"]
            ],
        },
    )
