"""Browser test fixtures: one headless Debian Chromium per module, a freshly built frontend,
and ORM helpers that create labelers and tasks the way the tests need them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple 42"


def _frontend_stale() -> bool:
    bundle = FRONTEND / "dist" / "main.js"
    if not bundle.exists() or not (FRONTEND / "dist" / "main.css").exists():
        return True
    built = bundle.stat().st_mtime
    return any(p.stat().st_mtime > built for p in (FRONTEND / "src").rglob("*") if p.is_file())


@pytest.fixture(scope="session")
def frontend_built() -> None:
    """Builds frontend/dist when it is missing or older than frontend/src."""
    if not _frontend_stale():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build the frontend for the browser tests")
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True, capture_output=True)


@pytest.fixture(scope="module")
def browser(frontend_built) -> Iterator:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
    # the test body's ORM calls, which are synchronous and safe here. Only while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    close_quietly(context)


def close_quietly(context) -> None:
    """Closes a browser context once the server is done with what its pages sent.

    The workspace sends requests in the background (the next task's prefetch, drafts); one still
    running on the live server when the test database is flushed can deadlock with the flush's
    TRUNCATE. Leaving the pages stops new requests; the pause lets running ones finish.
    """
    for open_page in context.pages:
        try:
            open_page.goto("about:blank")
        except Exception:  # a page that is already gone has nothing in flight
            pass
    if context.pages:
        context.pages[0].wait_for_timeout(500)
    context.close()


def make_labeler(username: str, *, screening_status: str = "passed"):
    from django.contrib.auth import get_user_model

    from labeling.models import Labeler

    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    return Labeler.objects.create(user=user, screening_status=screening_status)


def make_task(
    *,
    problem_text: str,
    answer: str,
    steps: list[str],
    alternatives: dict[int, list[str]] | None = None,
    priority: int = 0,
):
    """A generation-0 task over a new solution with `steps` (and alternatives per step index)."""
    from labeling.models import Generation, LabelingTask, Problem, Solution, Step, StepAlternative

    generation, _ = Generation.objects.get_or_create(
        number=0, defaults={"state": Generation.State.ACTIVE}
    )
    problem = Problem.objects.create(text=problem_text, reference_answer=answer)
    fingerprint = hashlib.sha256(("\n".join([problem_text, *steps])).encode()).hexdigest()
    solution = Solution.objects.create(
        problem=problem, fingerprint=fingerprint, num_steps=len(steps), source="test"
    )
    for position, text in enumerate(steps):
        step = Step.objects.create(solution=solution, position=position, text=text)
        for j, alt in enumerate((alternatives or {}).get(position, []), start=1):
            StepAlternative.objects.create(step=step, position=j, text=alt)
    return LabelingTask.objects.create(solution=solution, generation=generation, priority=priority)


def log_in(page, username: str, path: str = "/label/") -> None:
    """Signs in through the login form, landing on `path`."""
    page.goto(path)
    page.wait_for_selector("#sign-in")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"**{path}")


def snap(page, name: str) -> None:
    """Saves a screenshot when STEPWISE_SCREENSHOTS names a folder (for looking at the pages)."""
    folder = os.environ.get("STEPWISE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
