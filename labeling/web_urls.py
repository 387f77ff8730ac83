"""Browser pages for labelers: the workspace at /label/, the personal page at /me/, and / which
sends each role where it works (labelers to the workspace, admins to the console)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, path, resolve

from labeling.permissions import is_stepwise_admin


def _console_url() -> str:
    # The console app may not have pages yet; Django's admin is the fallback until it does.
    try:
        resolve("/console/")
    except Resolver404:
        return "/admin/"
    return "/console/"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect(_console_url() if is_stepwise_admin(request) else "label")


@login_required
def workspace(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/workspace.html")


@login_required
def interactive(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/interactive.html")


@login_required
def interactive_rounds(request: HttpRequest) -> HttpResponse:
    """Admins: create phase-1 rounds and follow them (the API does the work)."""
    if not is_stepwise_admin(request):
        raise PermissionDenied
    return render(request, "labeling/interactive_rounds.html")


@login_required
def me(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/me.html")


urlpatterns = [
    path("", home, name="home"),
    path("label/", workspace, name="label"),
    path("label/interactive/", interactive, name="label-interactive"),
    path("label/interactive/rounds/", interactive_rounds, name="label-interactive-rounds"),
    path("me/", me, name="me"),
]
