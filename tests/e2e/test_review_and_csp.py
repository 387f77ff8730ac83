"""In headless Chromium: the console's review screen (reasons, a labeling read-only as its
labeler saw it, gold from it, labelers' scores), and every page working under the
Content-Security-Policy with no violation (workspace, /me/, each console page, /api/docs/)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, log_in, make_labeler, make_task, snap

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STEPS = [r"Let $x = 2$.", r"Then $x^2 = 4$.", r"So $x^3 = 6$.", "# Answer\n\n6"]

# Records every CSP violation the page reports (the listener is installed by the browser
# before the page's own scripts, so the policy does not apply to it).
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def _admin(name: str = "ada"):
    labeler = make_labeler(name)
    labeler.role = "admin"
    labeler.save()
    return labeler


def _review_world():
    """Round 1: alice and bob label one solution (bob: Bad at step 2), carol gives up with a
    reason on another."""
    from tests.exports import factories as f

    round1 = f.generation(1)
    round1.state = "active"
    round1.save()
    shared = f.solution(STEPS, problem_text=r"Cube $x$ when $x = 2$.", answer="8")
    other = f.solution(["Guess 7.", "# Answer\n\n7"], problem_text="What is $3+4$?", answer="7")
    people = {name: make_labeler(name) for name in ("alice", "bob", "carol")}

    def label(who: str, of, *ratings: int, finish_reason: str = "found_error"):
        steps = [{"completions": [(STEPS[i], r)], "chosen": 0} for i, r in enumerate(ratings)]
        return f.labeling(
            by=people[who],
            of=of,
            steps=steps,
            timestamp=T0,
            gen=round1,
            finish_reason=finish_reason,
        )

    label("alice", shared, 1, 1, -1)
    bob = label("bob", shared, 1, -1)
    carol = label("carol", other, finish_reason="give_up")
    carol.finish_reason_text = "Step 1 is a guess; I cannot rate a guess."
    carol.save()
    return {"bob": bob, "shared": shared, "round": round1}


def test_review_a_labeling_and_make_it_gold(page):
    from labeling.models import LabelingTask

    world = _review_world()
    _admin()
    log_in(page, "ada", "/console/review/")
    reasons = page.locator("#reasons-table")
    expect(reasons).to_contain_text("Step 1 is a guess; I cannot rate a guess.")
    expect(reasons).to_contain_text("carol")
    page.click("a[data-tab=disagreements]")
    row = page.locator("#disagreements-table tbody tr").first
    expect(row).to_contain_text("bob −1")
    expect(row).to_contain_text("alice +1")
    expect(page.locator("#alpha-table")).to_contain_text("1")
    snap(page, "review-disagreements")

    # Open bob's labeling from his rating of the disputed step.
    row.locator("a", has_text="bob").click()
    page.wait_for_url(f"**/console/review/labelings/{world['bob'].pk}/#step-1")
    expect(page.locator("#step-1")).to_have_class(re.compile(r"\bfocused\b"))
    expect(page.locator("#step-1")).to_have_attribute("data-rating", "-1")
    # The workspace's own rows: the reference answer sits beside the final step (hidden here,
    # as bob never reached it), and nothing of the work bars shows.
    expect(page.locator("#step-3 #reference-beside")).to_be_hidden()
    expect(page.locator(".finish-bar")).to_be_hidden()
    expect(page.locator("#step-0 button.rate-great")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#step-1 button.rate-bad")).to_have_attribute("aria-pressed", "true")
    assert page.locator("#step-1 button:enabled").count() == 0  # read-only
    assert page.locator("#problem-text .katex").count() == 2
    # Steps after the first Bad one were never shown to bob: folded away and said so.
    expect(page.locator("#unreached summary")).to_have_text("2 later steps the labeler did not see")
    snap(page, "review-labeling")

    page.select_option("select[name=kind]", "qc")
    page.click("#gold-submit")
    expect(page.locator("#gold-result")).to_contain_text("QC item of round 1")
    task = LabelingTask.objects.get(solution=world["shared"], generation=world["round"])
    assert task.kind == "qc" and task.gold_ratings == [1, -1]
    page.reload()
    expect(page.locator("#gold-items")).to_contain_text("taken from this labeling")
    assert task.gold_labeling_id == world["bob"].pk

    page.goto("/console/review/?show=labelers")
    expect(page.locator("tr[data-labeler=carol]")).to_contain_text("1")
    snap(page, "review-labelers")


def test_every_page_runs_under_the_csp_without_violations(page, live_server):
    world = _review_world()
    _admin()
    make_task(
        problem_text=r"What is $\frac{1}{2} + \frac{1}{2}$?",
        answer="1",
        steps=[r"$\frac{1}{2} + \frac{1}{2} = 1$.", "# Answer\n\n1"],
    )
    make_labeler("lou")
    page.context.add_init_script(WATCH_CSP)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def visit(path: str, ready: str) -> None:
        page.goto(path)
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], path
        assert [e for e in errors if "Content Security Policy" in e] == [], path

    log_in(page, "lou", "/label/")
    response = page.request.get("/label/")
    policy = response.headers["content-security-policy"]
    script_src = policy.split("script-src")[1].split(";")[0]
    assert script_src.strip() == "'self'", policy
    visit("/label/", "#step-0")
    page.keyboard.press("1")  # the workspace's scripts run: rating a step works
    expect(page.locator("#step-0 button.rate-great")).to_have_attribute("aria-pressed", "true")
    visit("/me/", "#app")
    visit("/label/interactive/", "#app")
    visit("/console/", "main")  # a labeler on an admin page: the friendly refusal
    page.context.clear_cookies()

    log_in(page, "ada", "/console/")
    for path, ready in [
        ("/console/", "#rounds-table tbody tr"),
        # Drawn by the pages' scripts from the API: proof they ran and their requests passed.
        ("/console/data/", "#sampling-table td:has-text('No generation runs yet.')"),
        ("/console/prm/", "#runs-status:has-text('No runs yet.')"),
        ("/console/review/", "#reasons-table"),
        ("/console/review/?show=flagged", "#flagged-table"),
        ("/console/review/?show=disagreements", "#disagreements-table"),
        ("/console/review/?show=labelings", "#labelings-table"),
        ("/console/review/?show=labelers", "#labeler-scores-table"),
        ("/api/docs/", ".swagger-ui .info .title"),
    ]:
        visit(path, ready)
    visit(f"/console/review/labelings/{world['bob'].pk}/", "#steps")
    snap(page, "csp-review-labeling")

    # The policy is enforced: an inline script injected into the page does not run.
    ran = page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.body.append(s); return window.__ran === 1; }"
    )
    assert ran is False
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__csp")[0].startswith("script-src")


def test_api_docs_are_served_from_here(client):
    """Swagger UI's files come from this server (drf-spectacular-sidecar), not a CDN."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="docs", password=PASSWORD)
    client.force_login(user)
    html = client.get("/api/docs/").content.decode()
    assert "cdn" not in html.lower() and "<script>" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


def test_rounds_table_numbers_do_not_mislead(page):
    """An imported generation reads as an import (no progress bar); a paused round still shows
    its queue; queued + leased + done add up to the tasks."""
    from active_learning.services import round_pause
    from labeling.models import Generation, LabelingTask
    from labeling.services import assignment_claim
    from tests.exports import factories as f

    imported = Generation.objects.create(number=6, state="finished")
    line = f.labeling(by=f.labeler("prm800k-x"), of=f.solution(["a"]), steps=[], timestamp=T0)
    line.generation, line.source = imported, "import"
    line.save()
    paused = Generation.objects.create(number=7, state="active")
    for i in range(4):
        LabelingTask.objects.create(solution=f.solution([f"step {i}"]), generation=paused)
    assert assignment_claim(labeler=make_labeler("lou")) is not None
    round_pause(generation_id=paused.pk)
    _admin()
    log_in(page, "ada", "/console/")
    row = page.locator("tr[data-round='6']")
    expect(row.locator(".counts")).to_have_text("imported: 1 labeling, no tasks")
    expect(row.locator(".state")).to_have_text("imported")
    expect(row.locator("progress")).to_have_count(0)
    row = page.locator("tr[data-round='7']")
    expect(row.locator(".counts")).to_have_text("3 · 1 · 0 / 4 (queued tasks wait for resume)")
    expect(row.locator("progress")).to_have_count(1)
    snap(page, "rounds-numbers")
