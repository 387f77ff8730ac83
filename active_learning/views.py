"""The admin console's pages. Thin: selectors read, templates render, console.ts polls the API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from active_learning import charts, selectors, services, strategies
from training.models import PRMVersion


def _require_admin(request: HttpRequest) -> None:
    """Same rule as the API's ``IsStepwiseAdmin``: superusers and labelers with role admin."""
    user = request.user
    labeler = getattr(user, "labeler", None)
    if not (user.is_superuser or (labeler is not None and labeler.is_admin)):
        raise PermissionDenied("Only stepwise admins may open the console.")


@login_required
def rounds_dashboard(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    per_day = selectors.labels_per_day()
    versions = PRMVersion.objects.filter(
        state__in=[PRMVersion.State.READY, PRMVersion.State.ACTIVE, PRMVersion.State.RETIRED]
    ).order_by("-created_at", "-id")
    distribution = sorted(
        selectors.label_distribution().items(),
        key=lambda kv: (kv[0] == "none", int(kv[0]) if kv[0] != "none" else 0),
    )
    return render(
        request,
        "active_learning/console/rounds.html",
        {
            "versions": versions,
            "strategies": strategies.STRATEGIES,
            "default_wrong_share": strategies.DEFAULT_WRONG_SHARE,
            "max_size": services.MAX_ROUND_SIZE,
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
def prm_dashboard(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    data = selectors.prm_dashboard()
    return render(
        request,
        "active_learning/console/prm.html",
        {
            "versions": data["versions"],
            "metric_labels": [label for label, _ in selectors.PRM_METRICS],
            "runs": data["runs"],
            "charts": [
                {
                    "label": s["label"],
                    "svg": charts.line_chart(s["points"], title=f"{s['label']} by generation"),
                }
                for s in data["series"]
            ],
        },
    )
