"""The interactive (phase 1) page in real headless Chromium, against the live server sampling from
a real local generator (a tiny random-weight Llama built here, so it runs in seconds on a CPU).

The labeler works by keyboard only: rates every candidate, reloads (same candidates, same
ratings), chooses one, writes a step of their own, and ends the solution with a written
`# Answer` step. The stored labeling is then exported, compared field by field with the real
PRM800K phase-1 lines, imported back and compared with what was stored.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in, make_labeler, snap
from tests.generator.conftest import build_tiny_generator
from tests.training.test_phase1 import assert_same_shape, labeling_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return build_tiny_generator(tmp_path_factory.mktemp("tiny-phase1"))


@pytest.fixture
def phase1_round(settings, tiny_model):
    from labeling.models import Problem
    from training.phase1.services import phase1_round_create

    settings.STEPWISE_GENERATORS = {
        **settings.STEPWISE_GENERATORS,
        "tiny-local": {"backend": "local", "model": str(tiny_model), "chat": False},
    }
    problem = Problem.objects.create(
        text=r"What is $1 + 1$? Give the answer as $\frac{a}{b}$ if needed.", reference_answer="2"
    )
    return phase1_round_create(
        problem_ids=[problem.pk], generator="tiny-local", k=3, max_new_tokens=12, temperature=1.0
    )


def candidate_texts(page) -> list[str]:
    return page.locator(".p1-candidate .item-text").all_inner_texts()


def rate_all(page, keys: list[str]) -> None:
    """Rate candidates in order (focus moves to the next unrated one after each key)."""
    count = page.locator(".p1-candidate").count()
    for key in keys[:count]:
        page.keyboard.press(key)
    for i in range(count):
        row = page.locator(f".p1-candidate[data-index='{i}']")
        expect(row).to_have_attribute(
            "data-rating", {"1": "1", "g": "1", "2": "0", "o": "0"}.get(keys[i], "-1")
        )


def test_a_whole_trajectory_by_keyboard(page, live_server, phase1_round, shared_data, tmp_path):
    from labeling.exports import iter_prm800k_lines
    from labeling.imports.prm800k import import_prm800k
    from labeling.models import Labeling, TrajectoryCandidates

    alice = make_labeler("p1alice")
    page.set_default_timeout(60_000)  # sampling on a shared CPU
    log_in(page, "p1alice", "/label/interactive/")
    expect(page.locator(".p1-candidate").first).to_be_visible()
    assert page.locator(".problem .katex").count() >= 2  # the problem's math is typeset
    first_texts = candidate_texts(page)
    assert 1 <= len(first_texts) <= 3
    snap(page, "interactive-step1")

    # Step 1: rate every candidate by keyboard; reload: same candidates, same ratings.
    rate_all(page, ["1", "2", "3"])
    page.keyboard.press("f")  # all rated, focus stays on the last one: flag it as unsure
    stored_before = TrajectoryCandidates.objects.filter(position=0).count()
    page.wait_for_timeout(1500)  # let the debounced server draft go out
    page.reload()
    expect(page.locator(".p1-candidate").first).to_be_visible()
    assert candidate_texts(page) == first_texts
    assert TrajectoryCandidates.objects.filter(position=0).count() == stored_before == 1
    expect(page.locator(".p1-candidate[data-index='0']")).to_have_attribute("data-rating", "1")

    # Choose a candidate that does not end the solution (the first such one).
    titles = page.locator(".p1-candidate .item-title").all_inner_texts()
    choice = next(i for i, title in enumerate(titles) if "final answer" not in title)
    for _ in range(len(titles)):
        page.keyboard.press("ArrowUp")
    for _ in range(choice):
        page.keyboard.press("ArrowDown")
    expect(page.locator(".p1-candidate.focused")).to_have_attribute("data-index", str(choice))
    page.keyboard.press("Enter")
    expect(page.locator(".p1-decided")).to_have_count(1)
    expect(page.locator(".p1-current h2")).to_contain_text("Step 2")
    snap(page, "interactive-step2")

    # Step 2: rate, then write a step of one's own (rendered as math while typing).
    rate_all(page, ["g", "o", "b"])
    page.keyboard.press("w")
    page.keyboard.type(r"Adding gives $1 + 1 = 2$.")
    expect(page.locator(".p1-preview .katex")).to_have_count(1)
    snap(page, "interactive-writing")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".p1-decided")).to_have_count(2)
    expect(page.locator(".p1-written .katex")).to_have_count(1)
    expect(page.locator(".p1-current h2")).to_contain_text("Step 3")

    # Step 3: rate, write the final step with the answer: the solution is finished.
    rate_all(page, ["3", "3", "3"])
    page.keyboard.press("w")
    page.keyboard.type("So the sum is $2$.")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.type("# Answer")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.type("2")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".p1-done")).to_contain_text("Solution finished")
    snap(page, "interactive-done")

    labeling = Labeling.objects.get(labeler=alice)
    assert labeling.finish_reason == "solution"
    assert labeling.solution.grade == "correct"
    steps = list(labeling.steps.order_by("position"))
    assert [s.chosen_completion for s in steps] == [choice, None, None]
    assert [s.human_completion_text for s in steps] == [
        None,
        "Adding gives $1 + 1 = 2$.",
        "So the sum is $2$.\n\n# Answer\n\n2",
    ]
    ratings = [[c.rating for c in s.completions.order_by("position")] for s in steps]
    flags = [c.flagged for c in steps[0].completions.order_by("position")]
    assert flags == [False] * (len(flags) - 1) + [True]
    n = [len(r) for r in ratings]
    assert ratings == [[1, 0, -1][: n[0]], [1, 0, -1][: n[1]], [-1, -1, -1][: n[2]]]

    # Export: the real phase-1 shape, field for field; import back: the same labeling.
    [line] = list(iter_prm800k_lines())
    real = next(
        json.loads(raw)
        for raw in (shared_data / "prm800k_sample_openr.jsonl").read_text().splitlines()
        if json.loads(raw)["generation"] is None
    )
    assert_same_shape(json.loads(line), real)
    path = tmp_path / "phase1.jsonl"
    path.write_text(line + "\n")
    import_prm800k(path)
    imported = Labeling.objects.exclude(pk=labeling.pk).get()
    assert labeling_rows(imported) == labeling_rows(labeling)
    assert list(iter_prm800k_lines())[1] == line


def test_admin_creates_a_phase1_round_from_the_page(page, live_server, settings, tiny_model):
    from labeling.models import Generation, LabelingTask, Problem

    settings.STEPWISE_GENERATORS = {
        **settings.STEPWISE_GENERATORS,
        "tiny-local": {"backend": "local", "model": str(tiny_model), "chat": False},
    }
    for i in range(3):
        Problem.objects.create(
            text=f"What is {i} + {i}?", reference_answer=str(2 * i), split="test"
        )
    admin = make_labeler("p1admin")
    admin.role = "admin"
    admin.save()
    log_in(page, "p1admin", "/label/interactive/rounds/")
    page.select_option("#p1-generator", "tiny-local")
    page.fill("#p1-k", "0")
    page.click(".p1-round-form button[type=submit]")
    expect(page.locator("#p1-k + .field-error")).to_contain_text("candidates")
    assert not Generation.objects.filter(strategy="phase1").exists()
    page.fill("#p1-k", "3")
    page.fill("#p1-limit", "2")
    page.fill("#p1-split", "test")
    page.fill("#p1-labelings_per_problem", "2")
    page.click(".p1-round-form button[type=submit]")
    expect(page.locator("tr[data-round]")).to_have_count(1)
    expect(page.locator("tr[data-round] td").nth(6)).to_have_text("0 / 2")
    snap(page, "interactive-rounds")
    generation = Generation.objects.get(strategy="phase1")
    assert generation.strategy_params["k"] == 3
    assert LabelingTask.objects.filter(generation=generation, labelings_required=2).count() == 2

    # Labelers get a 403 on the page, and the API refuses them.
    make_labeler("p1labeler")
    page.context.clear_cookies()
    log_in(page, "p1labeler", "/label/interactive/")
    response = page.goto("/label/interactive/rounds/")
    assert response.status == 403
