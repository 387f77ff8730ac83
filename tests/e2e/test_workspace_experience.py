"""The workspace as a labeler meets it on the first day, in real headless Chromium: math and
money, the answer line, hostile TeX and text, the timer, queue line, guidelines and
confirmations, the next task leased ahead, two tabs, the history on /me/, a phone-sized
window, the dark theme, and the page for a URL the account may not open.

Screenshots go to STEPWISE_SCREENSHOTS when it names a folder (see conftest.snap).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import close_quietly, log_in, make_labeler, make_task, snap

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GSM8K_MONEY = (
    "Cost per gallon = $3.5, Total gallons purchased = 4000. Total cost = Cost per gallon * "
    "Total gallons purchased = $3.5 * 4000 = $14,000."
)


def no_page_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_money_math_answer_line_hostile_tex_and_bidi(page):
    make_labeler("mia")
    make_task(
        problem_text="Milk costs \\$3.5 a gallon. Find $x$ if $$x = \\frac{14000}{4000}.$$",
        answer="\\frac{5}{6}",
        steps=[
            GSM8K_MONEY,
            "So \\(x = 3.5\\) and \\[y = x^2\\] and $5!$ ways.",
            "Huge: $\\rule{5000px}{5000px}$ and $\\underbrace{" + "x+" * 400 + "x}$",
            "We get x = 5\u202e2 = y here.",
            "Therefore the answer is $\\frac{5}{6}$.\n\n# Answer\n\n\\frac{5}{6}",
        ],
    )
    log_in(page, "mia")
    expect(page.locator("#step-0")).to_be_visible()
    # Money stays text with its dollar signs; nothing of it is typeset.
    money = page.locator("#step-0 .item-text")
    assert money.locator(".katex").count() == 0
    assert money.inner_text().strip() == GSM8K_MONEY
    # An escaped dollar in the problem is a dollar sign; the real math is typeset.
    expect(page.locator("#problem-text")).to_contain_text("Milk costs $3.5 a gallon.")
    assert page.locator("#problem-text .katex-display").count() == 1

    page.keyboard.press("1")
    assert page.locator("#step-1 .katex").count() == 3
    assert page.locator("#step-1 .katex-display").count() == 1

    # Hostile TeX: the rule is capped by maxSize and the long formula scrolls inside its step.
    page.keyboard.press("1")
    expect(page.locator("#step-2")).to_be_visible()
    assert no_page_overflow(page), page.evaluate("document.documentElement.scrollWidth")
    box = page.locator("#step-2").bounding_box()
    assert box is not None and box["width"] <= 1200 and box["height"] < 1000

    # A right-to-left override is shown as a code point, not obeyed.
    page.keyboard.press("1")
    bidi = page.locator("#step-3 .item-text").inner_text()
    assert "\u202e" not in bidi and "5[U+202E]2 = y" in bidi

    # The answer line is typeset, and the reference answer sits beside the final step.
    page.keyboard.press("1")
    answer = page.locator("#step-4 .step-answer")
    expect(answer).to_contain_text("Answer:")
    assert answer.locator(".katex .mfrac").count() == 1
    assert "\\frac" not in answer.inner_text()
    beside = page.locator("#step-4 #reference-beside")
    expect(beside).to_be_visible()
    assert beside.locator(".katex .mfrac").count() == 1
    snap(page, "experience-math-desktop")
    assert no_page_overflow(page)


def test_timer_queue_guidelines_confirmation_and_the_next_task_leased_ahead(page):
    from labeling.models import Assignment, Labeling

    nina = make_labeler("nina")
    for n in range(3):
        make_task(
            problem_text=f"Task {n}: $1+{n}$?", answer=str(1 + n), steps=["a", "b"], priority=10 - n
        )
    log_in(page, "nina")
    expect(page.locator("#problem-text")).to_contain_text("Task 0")
    expect(page.locator("#queue")).to_have_text("Task 1 today · 2 left in round 0")
    expect(page.locator("#timer")).to_have_text(re.compile(r"^Time 0:0\d$"))
    page.mouse.move(10, 10)  # activity: the active timer runs
    page.wait_for_timeout(1_200)
    expect(page.locator("#timer")).not_to_have_text("Time 0:00")

    # The guidelines, with an example per rating and the note on idle time.
    page.keyboard.press("?")
    guidelines = page.locator("#help-dialog")
    expect(guidelines).to_be_visible()
    for text in ("Great (+1)", "Okay (0)", "Bad (-1)", "not counted"):
        expect(guidelines).to_contain_text(text)
    assert guidelines.locator(".example .katex").count() >= 3
    snap(page, "experience-guidelines")
    page.keyboard.press("Escape")

    # While the labeler works, the next task is leased ahead (a real, prefetched lease).
    for _ in range(50):
        if Assignment.objects.filter(labeler=nina, state="active", prefetched=True).exists():
            break
        page.wait_for_timeout(100)
    ahead = Assignment.objects.get(labeler=nina, state="active", prefetched=True)
    claims: list[str] = []
    page.on("request", lambda r: claims.append(r.url) if r.url.endswith("/claim/") else None)
    held = []  # the submit is held back: the next task must not wait for it
    page.route("**/submit/", lambda route: held.append(route))
    page.keyboard.press("1")
    page.keyboard.press("1")
    page.keyboard.press("s")
    expect(page.locator("#problem-text")).to_contain_text("Task 1")
    assert len(held) == 1 and Labeling.objects.filter(labeler=nina).count() == 0
    page.keyboard.press("1")  # and it can be rated at once
    held[0].continue_()
    page.unroute("**/submit/")
    assert claims == []
    expect(page.locator("#queue")).to_have_text("Task 2 today · 1 left in round 0")
    confirmation = page.locator("#confirmation")
    expect(confirmation).to_contain_text("Submitted: every step rated")
    snap(page, "experience-confirmation")
    page.wait_for_timeout(3_500)  # still there long enough to read
    expect(confirmation).to_be_visible()
    assert Labeling.objects.filter(labeler=nina).count() == 1
    # The submit made the prefetched lease the open one.
    ahead.refresh_from_db()
    assert ahead.state == "active" and not ahead.prefetched


def test_two_tabs_on_one_task_are_told_and_do_not_overwrite(page, live_server):
    from labeling.models import Assignment

    make_labeler("olga")
    make_task(problem_text="Two tabs $t$", answer="1", steps=["a", "b", "c"])
    log_in(page, "olga")
    expect(page.locator("#step-0")).to_be_visible()
    second = page.context.new_page()  # same browser, same session: a second tab
    second.goto("/label/")
    expect(second.locator("#step-0")).to_be_visible()
    for tab in (page, second):
        expect(tab.locator("#notice")).to_contain_text("also open in another tab")

    page.keyboard.press("1")  # first tab: Great, saved
    expect(page.locator("#save-status")).to_contain_text("Saved")
    second.keyboard.press("2")  # second tab, which has not seen it: Okay
    expect(second.locator("#notice")).to_contain_text("changed in another tab")
    expect(second.locator("#reload-task")).to_be_visible()
    snap(second, "experience-two-tabs")
    draft = Assignment.objects.get(state="active").draft_state
    assert draft["steps"][0]["rating"] == 1  # the first tab's rating was kept
    # Reloading the second tab picks up the first tab's rating and may go on from there.
    second.click("#reload-task")
    expect(second.locator("#step-0 button.rate-great")).to_have_attribute("aria-pressed", "true")
    second.keyboard.press("2")
    expect(second.locator("#save-status")).to_contain_text("Saved")
    second.close()


def test_history_on_me_shows_ratings_and_gold_once_the_round_is_closed(page):
    from labeling.models import Generation, LabelingTask

    make_labeler("pia")
    task = make_task(problem_text="QC: $2+2$?", answer="4", steps=["$2+2=4$", "# Answer\n\n4"])
    LabelingTask.objects.filter(pk=task.pk).update(kind="qc", gold_ratings=[1, -1])
    log_in(page, "pia")
    expect(page.locator("#step-0")).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("1")
    page.keyboard.press("s")
    expect(page.locator("#no-work")).to_be_visible()

    page.goto("/me/")
    item = page.locator("#history .history-item").first
    expect(item).to_be_visible()
    item.locator("summary").click()
    expect(item.locator(".history-steps li")).to_have_count(2)
    expect(item).to_contain_text("Great +1")
    assert item.locator(".katex").count() >= 2
    # While the round runs nothing marks the item as a quality check.
    expect(item).not_to_contain_text("Quality check")
    expect(item).not_to_contain_text("gold")

    Generation.objects.filter(number=0).update(state=Generation.State.FINISHED)
    page.reload()
    item = page.locator("#history .history-item").first
    item.locator("summary").click()
    expect(item).to_contain_text("Quality check (round closed): 50% of your ratings match gold")
    expect(item.locator(".gold-differs")).to_have_text("gold: Bad −1")
    snap(page, "experience-history")


LONG_STEP = (
    "We now expand the product term by term and collect like powers of $x$, which gives "
    "$x^3 + 3x^2 + 3x + 1$ after simplification of every coefficient."
)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_width_keeps_the_focused_step_visible_in_both_themes(browser, live_server, scheme):
    make_labeler("quin")
    make_task(problem_text="A long one: $(x+1)^3$?", answer="x^3+3x^2+3x+1", steps=[LONG_STEP] * 9)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 375, "height": 667}, color_scheme=scheme
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, "quin")
        expect(page.locator("#step-0")).to_be_visible()
        for i in range(7):
            page.keyboard.press("1")
            focused = page.locator(f"#step-{i + 1}")
            expect(focused).to_have_class(re.compile(r"\bfocused\b"))
            row = focused.bounding_box()
            bar = page.locator(".finish-bar").bounding_box()
            assert row is not None and bar is not None
            # The focused step is on screen and not under the sticky bar.
            assert row["y"] >= 0 and row["y"] + row["height"] <= bar["y"] + 1, (i, row, bar)
        assert no_page_overflow(page)
        background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        darkness = sum(int(c) for c in re.findall(r"\d+", background)[:3])
        assert (darkness < 150) if scheme == "dark" else (darkness > 600), background
        snap(page, f"experience-phone-{scheme}")
        folder = os.environ.get("STEPWISE_SCREENSHOTS")
        if folder:  # what the labeler sees: the window, sticky bar included
            page.screenshot(path=str(Path(folder) / f"experience-phone-{scheme}-window.png"))
    finally:
        close_quietly(context)


def test_a_labeler_opening_the_console_gets_a_friendly_page(page):
    make_labeler("rex")
    log_in(page, "rex", "/me/")
    response = page.goto("/console/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("This page is not open to your account")
    expect(page.locator(".forbidden")).to_contain_text("signed in as rex")
    snap(page, "experience-forbidden")
    page.click(".forbidden a.button.primary")
    page.wait_for_url("**/label/")
