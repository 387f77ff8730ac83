"""The labeler's workspace in real headless Chromium against the live Django server.

Each test drives the page by keyboard as a labeler would and then checks the rows the server
stored, not only what the page shows.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in, make_labeler, make_task, snap

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def pressed(page, row: str, label: str):
    return page.locator(f"{row} button[aria-label^='{label}']")


def stored_labelings(labeler):
    from labeling.models import Labeling

    return list(
        Labeling.objects.filter(labeler=labeler)
        .prefetch_related("steps__completions")
        .order_by("timestamp", "id")
    )


def completions_of(labeling) -> list[list[tuple[int, int | None, bool | None]]]:
    """[(position, rating, flagged) per completion] per labeled step."""
    return [
        [(c.position, c.rating, c.flagged) for c in step.completions.all()]
        for step in labeling.steps.all()
    ]


def test_found_error_by_keyboard_with_undo_reload_and_alternatives(page, live_server):
    alice = make_labeler("alice")
    make_task(
        problem_text=r"Solve $x^2 = 4$ for $x > 0$. Then compute \[\frac{x}{2}.\]"
        "\nGiven \\begin{align*}\ny &= x + 1, \\\\\nz &= 2y\n\\end{align*}find $z$.",
        answer=r"\frac{2}{2}",
        steps=[
            r"The positive root of $x^2 = 4$ is $x = 2$.",
            r"So $$\frac{x}{2} = \frac{2}{2}$$ which we simplify.",
            r"\(\frac{2}{2} = 2\)",
            "# Answer\n\n2",
        ],
        alternatives={2: [r"$\frac{2}{2} = 1$", "The fraction equals one."]},
    )
    page.goto("/label/")
    snap(page, "login")
    log_in(page, "alice")

    expect(page.locator("#step-0")).to_be_visible()
    # Math is typeset by KaTeX, in the problem, the answer and the steps.
    assert page.locator("#problem-text .katex").count() >= 2
    # \[...\] and a bare align* environment (as MATH problems write it) are display math.
    assert page.locator("#problem-text .katex-display").count() == 2
    assert "begin{align" not in page.locator("#problem-text").inner_text()
    assert page.locator("#reference-answer .katex").count() == 1
    assert page.locator("#step-0 .katex").count() == 2
    # Only the first step is revealed at first.
    expect(page.locator("#step-1")).to_be_hidden()

    page.keyboard.press("1")  # Great
    expect(page.locator("#step-1")).to_be_visible()
    expect(pressed(page, "#step-0", "Great")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("o")  # Okay
    expect(page.locator("#step-2")).to_be_visible()
    assert page.locator("#step-1 .katex-display").count() == 1

    # A Bad rating reveals the alternatives; undo takes it back.
    page.keyboard.press("b")
    expect(page.locator("#alt-2-0")).to_be_visible()
    expect(page.locator("#step-3")).to_be_hidden()
    page.keyboard.press("u")
    expect(page.locator("#alt-2-0")).to_be_hidden()
    expect(pressed(page, "#step-2", "Bad")).to_have_attribute("aria-pressed", "false")

    # Change an earlier rating by clicking its step, then go on from the open step.
    page.click("#step-0 .item-text")
    page.keyboard.press("2")
    expect(pressed(page, "#step-0", "Okay")).to_have_attribute("aria-pressed", "true")
    expect(pressed(page, "#step-0", "Great")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#step-2")).to_have_class(re.compile(r"\bfocused\b"))

    page.keyboard.press("f")  # unsure
    page.keyboard.press("3")  # Bad
    expect(page.locator("#alt-2-1")).to_be_visible()
    page.keyboard.press("1")  # first alternative: Great
    snap(page, "workspace-alternatives")
    expect(pressed(page, "#alt-2-0", "Great")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#save-status")).to_contain_text("Saved")

    # A reload mid-task restores every rating, the flag and the open alternative.
    page.reload()
    expect(page.locator("#alt-2-1")).to_be_visible()
    expect(pressed(page, "#step-0", "Okay")).to_have_attribute("aria-pressed", "true")
    expect(pressed(page, "#step-1", "Okay")).to_have_attribute("aria-pressed", "true")
    expect(pressed(page, "#step-2", "Bad")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#step-2 button.flag")).to_have_attribute("aria-pressed", "true")
    expect(pressed(page, "#alt-2-0", "Great")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#submit")).to_be_disabled()

    # The server's draft alone is enough: a fresh browser (no localStorage) finds the same.
    other = page.context.browser.new_context(base_url=live_server.url)
    try:
        fresh = other.new_page()
        log_in(fresh, "alice")
        expect(fresh.locator("#alt-2-1")).to_be_visible()
        expect(pressed(fresh, "#step-2", "Bad")).to_have_attribute("aria-pressed", "true")
        expect(pressed(fresh, "#alt-2-0", "Great")).to_have_attribute("aria-pressed", "true")
    finally:
        other.close()

    # And this browser's copy alone is enough: with draft saves failing, a flag set now
    # survives a reload.
    page.route("**/draft/", lambda route: route.abort())
    page.keyboard.press("f")
    expect(page.locator("#save-status")).to_contain_text("Offline")
    page.reload()
    expect(page.locator("#alt-2-1 button.flag")).to_have_attribute("aria-pressed", "true")
    page.unroute("**/draft/")

    page.keyboard.press("3")  # second alternative: Bad
    expect(page.locator("#submit")).to_be_enabled()
    page.keyboard.press("s")
    # Nothing else queued: the workspace says so instead of a task.
    expect(page.locator("#no-work")).to_be_visible()

    [labeling] = stored_labelings(alice)
    assert labeling.finish_reason == "found_error"
    assert labeling.source == "workspace"
    assert labeling.total_time_ms is not None and labeling.total_time_ms > 0
    assert completions_of(labeling) == [
        [(0, 0, False)],
        [(0, 0, False)],
        [(0, -1, True), (1, 1, False), (2, -1, True)],
    ]
    assert [s.chosen_completion for s in labeling.steps.all()] == [0, 0, None]
    assert labeling.steps.all()[2].completions.all()[1].text == r"$\frac{2}{2} = 1$"


def test_solution_then_give_up_with_reason_then_personal_page(page):
    bob = make_labeler("bob")
    make_task(
        problem_text="What is $1 + 1$?",
        answer="2",
        steps=["$1 + 1 = 2$.", "# Answer\n\n2"],
        priority=10,
    )
    make_task(problem_text="What is $2 + 2$?", answer="4", steps=["Hmm.", "$2+2=5$", "5"])

    page.goto("/")  # the root sends a labeler to the workspace, through the login form
    page.wait_for_selector("#sign-in")
    log_in(page, "bob", "/label/")
    expect(page.locator("#problem-text")).to_contain_text("What is")
    expect(page.locator("#problem-text")).to_contain_text("?")
    first_problem = page.locator("#problem-text").inner_text()
    assert "1 + 1" in first_problem or "1+1" in first_problem

    page.keyboard.press("g")
    page.keyboard.press("g")
    expect(page.locator("#progress")).to_contain_text("no Bad step")

    # A submit the server refuses as invalid leaves the task open with its ratings.
    page.route(
        "**/submit/",
        lambda route: route.fulfill(
            status=400, content_type="application/json", body='{"steps": ["made-up refusal"]}'
        ),
        times=1,
    )
    page.keyboard.press("s")
    expect(page.locator("#notice")).to_contain_text("made-up refusal")
    # Shown again (claim answered with the same open task): the page leaves its busy state.
    expect(page.locator("#task")).not_to_have_class(re.compile(r"\bleaving\b"))
    expect(page.locator("#submit")).to_be_enabled()
    expect(pressed(page, "#step-1", "Great")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#problem-text")).to_contain_text("1 + 1")
    assert stored_labelings(bob) == []

    page.keyboard.press("Enter")  # on the last item of a finished task, Enter submits too

    # The next task follows without a reload.
    expect(page.locator("#step-0")).to_contain_text("Hmm.")
    page.keyboard.press("2")
    page.keyboard.press("x")
    expect(page.locator("#reason-dialog")).to_be_visible()
    page.click("#reason-send")  # a reason is required
    expect(page.locator("#reason-error")).to_contain_text("reason")
    snap(page, "give-up-dialog")
    expect(page.locator("#reason-dialog")).to_be_visible()
    page.fill("#reason-text", "Cannot tell whether step 2 is a typo.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#no-work")).to_be_visible()
    snap(page, "no-work")

    solved, given_up = stored_labelings(bob)
    assert solved.finish_reason == "solution"
    assert completions_of(solved) == [[(0, 1, False)], [(0, 1, False)]]
    assert given_up.finish_reason == "give_up"
    assert given_up.finish_reason_text == "Cannot tell whether step 2 is a typo."
    assert completions_of(given_up) == [[(0, 0, False)]]
    assert solved.total_time_ms > 0 and given_up.total_time_ms > 0

    page.goto("/me/")
    expect(page.locator("#tasks-today")).to_have_text("2")
    expect(page.locator("#screening-status")).to_have_attribute("data-status", "passed")
    expect(page.locator("#recent tbody tr")).to_have_count(2)
    snap(page, "me")


def test_bad_problem_report_and_untrusted_text_rendered_as_text(page):
    carol = make_labeler("carol")
    make_task(
        problem_text='Evil <img src=x onerror="window.__pwned=1"> problem with $a<b$',
        answer="<b>1</b>",
        steps=[
            "<script>window.__pwned = 2</script> step one",
            "Link $\\href{javascript:window.__pwned=3}{click}$ and <img src=x onerror=window.__pwned=4>",
        ],
    )
    log_in(page, "carol")
    expect(page.locator("#step-0")).to_contain_text("<script>window.__pwned = 2</script> step one")
    expect(page.locator("#problem-text")).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert page.locator("#problem-text .katex").count() == 1  # "$a<b$" is still math
    page.click("#step-0 button.rate-great")  # the mouse works too
    expect(page.locator("#step-1")).to_contain_text("<img src=x onerror=window.__pwned=4>")
    # No element was created from the text: no <img>, no <script>, no link.
    assert page.locator("#app img, #app script, #app a[href^='javascript']").count() == 0
    page.wait_for_timeout(300)  # give a broken image's onerror the chance to fire
    snap(page, "untrusted-text")
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # Help lists the keys; Escape closes it and the keys work again.
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    expect(page.locator("#help-dialog")).to_contain_text("Report a bad problem")
    snap(page, "help")
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()

    # A phone-sized window still shows the rating buttons next to each step.
    page.set_viewport_size({"width": 420, "height": 800})
    expect(page.locator("#step-1 button.rate-bad")).to_be_visible()
    snap(page, "narrow")
    page.set_viewport_size({"width": 1200, "height": 900})

    page.click("#bad-problem")
    page.fill("#reason-text", "The problem statement contains HTML.")
    page.click("#reason-send")
    expect(page.locator("#no-work")).to_be_visible()
    [report] = stored_labelings(carol)
    assert report.finish_reason == "bad_problem"
    assert report.finish_reason_text == "The problem statement contains HTML."
    assert completions_of(report) == [[(0, 1, False)]]
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_lost_lease_is_reported_and_a_failed_submit_is_resent_after_reload(page):
    from django.utils import timezone

    from labeling.models import Assignment

    dave = make_labeler("dave")
    make_task(problem_text="First $p$", answer="1", steps=["one", "two"], priority=5)
    make_task(problem_text="Second $q$", answer="2", steps=["only step"])
    # No task leased ahead: this is the submit that must bring the next task itself
    # (claim_next), so "Offline" is the page's status. With the next task already on screen it
    # would be a passing confirmation instead, and whether the prefetch lands before "s" is
    # pressed is a race (test_workspace_experience.py tests the path with a task leased ahead).
    page.route("**/prefetch/", lambda route: route.abort())
    log_in(page, "dave")
    expect(page.locator("#problem-text")).to_contain_text("First")

    # The lease runs out behind the labeler's back: the next draft save gets 409.
    Assignment.objects.filter(labeler=dave).update(lease_expires_at=timezone.now())
    page.keyboard.press("1")
    expect(page.locator("#notice")).to_contain_text("no longer yours")
    expect(page.locator("#step-0")).to_be_visible()
    expect(page.locator("#step-0 button.rate[aria-pressed=true]")).to_have_count(0)

    # Whatever task came next: rate it to the end while its submit cannot reach the server.
    problem = page.locator("#problem-text").inner_text()
    failed = []

    def drop(route):
        failed.append(route.request.url)
        route.abort()

    page.route("**/submit/", drop)
    for _ in range(page.locator("#steps .item-step").count()):
        page.keyboard.press("1")
    page.keyboard.press("s")
    expect(page.locator("#save-status")).to_contain_text("Offline")
    assert failed

    # The labeling waits in this browser: after a reload it is sent again first (still failing
    # here), and it gets through once the server is reachable, before the next claim.
    tries_before_reload = len(failed)
    page.reload()
    expect(page.locator("#save-status")).to_contain_text("Offline")
    assert len(failed) > tries_before_reload
    assert stored_labelings(dave) == []
    page.unroute("**/submit/")
    page.wait_for_function(
        "(old) => { const p = document.querySelector('#problem-text'); const none ="
        " document.querySelector('#no-work'); return (none && !none.hidden) ||"
        " (p && p.textContent.trim() !== '' && p.innerText !== old); }",
        arg=problem,
    )
    [labeling] = stored_labelings(dave)
    assert labeling.finish_reason == "solution"
    assert problem.startswith(labeling.solution.problem.text.split("$")[0].strip())


def test_a_problem_without_a_reference_answer_says_none_given(page):
    # PRM800K screening items and ProcessBench's pool carry no reference answer: the workspace
    # says so instead of typesetting an empty box.
    make_labeler("alice")
    make_task(
        problem_text="Solve over the integers: $2^a + 4^b = 20$.", answer="", steps=["Try $a = 2$."]
    )
    log_in(page, "alice")
    expect(page.locator("#step-0")).to_be_visible()
    answer = page.locator("#reference-answer")
    expect(answer).to_have_text("none given")
    expect(answer).to_have_class(re.compile(r"\banswer-missing\b"))
    assert answer.locator(".katex").count() == 0
    page.keyboard.press("1")  # the last step: the reference beside it says the same
    expect(page.locator("#reference-beside .answer")).to_have_text("none given")
    snap(page, "workspace-no-reference-answer")
