"""The console's review pages: /console/review/ (lists and figures, drawn on the server) and
/console/review/labelings/<id>/ (one labeling read-only as its labeler saw it, drawn by
frontend/src/console/review.ts, with the form that makes it gold)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from labeling import review
from labeling.models import Labeling
from labeling.permissions import require_stepwise_admin

PAGE_SIZE = 50

TABS = [
    ("reasons", "Give-ups and bad problems"),
    ("flagged", "Flagged steps"),
    ("disagreements", "Disagreements"),
    ("labelings", "All labelings"),
    ("labelers", "Labelers"),
]


def _int(params: QueryDict, name: str, errors: dict[str, str]) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        errors[name] = f"{name} must be a whole number, not {raw!r}; it was left out."
        return None


def _filter(params: QueryDict) -> tuple[review.ReviewFilter, dict[str, str]]:
    errors: dict[str, str] = {}
    found = review.ReviewFilter(
        labeler_id=_int(params, "labeler", errors),
        generation=_int(params, "round", errors),
        problem_id=_int(params, "problem", errors),
    )
    return found, errors


@login_required
def review_page(request: HttpRequest) -> HttpResponse:
    require_stepwise_admin(request)
    tab = request.GET.get("show", "reasons")
    if tab not in dict(TABS):
        tab = "reasons"
    review_filter, errors = _filter(request.GET)
    page_number = request.GET.get("page")
    # Disagreements group every rated step: counted on their own tab only (its pager does).
    counts = {
        "reasons": review.labelings_with_reasons(review_filter).count(),
        "flagged": review.flagged_steps(review_filter).count(),
    }
    context: dict = {
        "tabs": [{"key": k, "label": label, "count": counts.get(k)} for k, label in TABS],
        "tab": tab,
        "tab_label": dict(TABS)[tab],
        "filter": review_filter,
        "filter_errors": errors,
        "choices": review.filter_choices(),
    }
    if tab == "reasons":
        context["page"] = Paginator(
            review.labelings_with_reasons(review_filter), PAGE_SIZE
        ).get_page(page_number)
    elif tab == "flagged":
        context["page"] = Paginator(review.flagged_steps(review_filter), PAGE_SIZE).get_page(
            page_number
        )
    elif tab == "disagreements":
        page = Paginator(review.disagreement_keys(review_filter), PAGE_SIZE).get_page(page_number)
        context["page"] = page
        dict_tab = {t["key"]: t for t in context["tabs"]}
        dict_tab["disagreements"]["count"] = page.paginator.count
        context["disagreements"] = review.disagreement_rows(list(page), review_filter)
        context["alpha_by_round"] = review.alpha_by_round()
    elif tab == "labelings":
        context["page"] = Paginator(review.labelings_browse(review_filter), PAGE_SIZE).get_page(
            page_number
        )
    else:
        context["labelers"] = review.labeler_scores()
    return render(request, "labeling/console/review.html", context)


@login_required
def review_labeling(request: HttpRequest, labeling_id: int) -> HttpResponse:
    require_stepwise_admin(request)
    try:
        detail = review.labeling_detail(labeling_id=labeling_id)
    except Labeling.DoesNotExist:
        raise Http404("No such labeling.") from None
    return render(request, "labeling/console/review_labeling.html", {"detail": detail})
