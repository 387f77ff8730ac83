"""The whole loop from the console alone, in headless Chromium against a real Celery worker.

An admin starts from an empty platform: imports problems, candidate solutions and PRM800K labels
(and sees a bad file refused with its line and field), launches the uniform round the form offers
while no PRM is active, trains a PRM from a registered base model and watches its run, activates
it past the held-out minimum (a confirmed override), launches the form's default round with it,
and watches the round finish once a labeler has labeled its tasks. Destructive actions (cancel a
round, retire the active PRM) ask first: declining keeps things as they are.

Only the accounts and the base-model registration (a Django admin task) are set up through the
ORM; everything else goes through the pages. Screenshots go to STEPWISE_SCREENSHOTS when set.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.e2e.conftest import PASSWORD, log_in, snap
from tests.e2e.test_console import console_bundle  # noqa: F401 - builds the console bundle

# Celery workers started in this session inherit it: one torch thread each.
os.environ.setdefault("STEPWISE_TORCH_THREADS", "1")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

PROBLEMS = 6


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> str:
    import torch

    from training.prm.synthetic import build_tiny_backbone

    torch.set_num_threads(1)
    return build_tiny_backbone(
        str(tmp_path_factory.mktemp("tiny-base")),
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        max_positions=512,
    )


def _files(folder: Path) -> dict[str, Path]:
    """A problems file (the first MATH500 problems), a pool of solutions to them (one right,
    two wrong each), and a problems file whose second line lacks its answer."""
    lines = (SHARED_DATA / "math500.jsonl").read_text().splitlines()[:PROBLEMS]
    problems = [json.loads(line) for line in lines]
    files = {
        "problems": folder / "problems.jsonl",
        "solutions": folder / "solutions.jsonl",
        "bad": folder / "bad_problems.jsonl",
    }
    files["problems"].write_text("\n".join(lines) + "\n")
    pool = []
    for i, p in enumerate(problems):
        for j, answer in enumerate([p["answer"], f"{1000 + i}", f"{2000 + i}"]):
            pool.append(
                {
                    "problem_id": p["unique_id"],
                    "steps": [
                        f"Read problem {i} carefully, attempt {j}.",
                        f"Work it out for attempt {j} of problem {i}.",
                        f"# Answer\n\n{answer}",
                    ],
                    "generator": "e2e-writer",
                }
            )
    files["solutions"].write_text("\n".join(json.dumps(s) for s in pool) + "\n")
    broken = dict(problems[1])
    del broken["answer"]
    files["bad"].write_text(json.dumps(problems[0]) + "\n" + json.dumps(broken) + "\n")
    return files


def _upload(page, kind: str, path: Path) -> str:
    form = page.locator(f"#import-{kind}")
    form.locator("input[type=file]").set_input_files(str(path))
    form.locator("button[type=submit]").click()
    result = form.locator("output.import-result")
    page.wait_for_function(
        "el => el.classList.contains('ok') || el.classList.contains('error')",
        arg=result.element_handle(),
        timeout=60_000,
    )
    return result.inner_text()


def _label_all_tasks(browser, base_url: str, username: str) -> int:
    """The labeler works through the labeling API with a token, as a script would (in a context
    of their own: the admin's session cookie must not ride along)."""
    context = browser.new_context(base_url=base_url)
    try:
        return _label_with(context.request, username)
    finally:
        context.close()


def _label_with(request, username: str) -> int:
    token = request.post(
        "/api/labeling/token/", data={"username": username, "password": PASSWORD}
    ).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    done = 0
    while True:
        claimed = request.post("/api/labeling/claim/", headers=headers)
        if claimed.status == 204:
            return done
        assert claimed.status == 200, claimed.text()
        assignment = claimed.json()["assignment"]
        steps = assignment["steps"]
        # Rate every step good except a wrong final answer's last step.
        body = {
            "finish_reason": "solution",
            "reason": "",
            "total_time_ms": 4000,
            "steps": [{"position": s["position"], "rating": 1, "flagged": False} for s in steps],
        }
        submitted = request.post(
            f"/api/labeling/assignments/{assignment['id']}/submit/",
            data=json.dumps(body),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert submitted.status == 201, submitted.text()
        done += 1


def _launch(page) -> int:
    """Submit the launch form; the number of the round it made (imported PRM800K generations
    count too, so it is not always 0)."""
    page.click("#launch-button")
    page.wait_for_selector("#rounds-status:has-text('launched.')", timeout=30_000)
    text = page.locator("#rounds-status").inner_text()
    return int(re.search(r"Round (\d+) launched", text).group(1))


def _confirm(page, accept: bool) -> None:
    dialog = page.locator("dialog#confirm-dialog")
    dialog.wait_for(state="visible")
    page.locator("#confirm-yes" if accept else "#confirm-no").click()
    dialog.wait_for(state="hidden")


def test_an_admin_runs_the_loop_from_the_console(
    page, live_server, celery_worker_process, tiny_model_dir, tmp_path
):
    from django.contrib.auth import get_user_model

    from active_learning.tasks import finish_rounds
    from labeling.models import Generation, Labeler, Labeling, Problem, Solution
    from training import services as training
    from training.models import PRMVersion

    users = get_user_model()
    admin = users.objects.create_user(username="ada", password=PASSWORD)
    Labeler.objects.create(user=admin, role="admin", screening_status="passed")
    lou = users.objects.create_user(username="lou", password=PASSWORD)
    Labeler.objects.create(user=lou, screening_status="passed")
    training.base_model_register(name="tiny-test", path=tiny_model_dir)
    files = _files(tmp_path)

    # An empty console: no rounds, no PRM, and the form starts on uniform.
    log_in(page, "ada", "/console/")
    page.wait_for_selector("#rounds-status:has-text('No rounds yet.')")
    assert "No PRM is active." in page.locator("#prm-notice").inner_text()
    assert page.locator("select[name=strategy]").input_value() == "uniform"
    snap(page, "01-rounds-empty")

    # Data: a bad file is refused with its line and field; nothing of it is kept.
    page.click("nav a:has-text('Data')")
    page.wait_for_url("**/console/data/")
    snap(page, "02-data-empty")
    refused = _upload(page, "problems", files["bad"])
    assert refused.startswith("Nothing was imported: line 2, field answer:"), refused
    assert Problem.objects.count() == 0
    snap(page, "03-data-bad-file")

    assert _upload(page, "problems", files["problems"]) == (
        f"Imported {PROBLEMS} lines: created {PROBLEMS} problems."
    )
    made = _upload(page, "solutions", files["solutions"])
    assert made.startswith(f"Imported {3 * PROBLEMS} lines: created"), made
    for name in ("prm800k_sample_openr.jsonl", "prm800k_sample_phase2.jsonl"):
        text = _upload(page, "prm800k", SHARED_DATA / name)
        assert text.startswith("Imported") and "labelings" in text, text
    assert Solution.objects.filter(generator="e2e-writer", grade="wrong").count() == 2 * PROBLEMS
    imported_labels = Labeling.objects.filter(source="import").count()
    assert imported_labels >= 8
    assert page.locator("[data-count=labelings]").inner_text() == str(imported_labels)
    candidates = int(page.locator("[data-count=candidates]").inner_text())
    assert candidates >= 3 * PROBLEMS
    snap(page, "04-data-imported")

    # A uniform round, as the form offers while no PRM is active; then cancel it, declining once.
    page.click("nav a:has-text('Rounds')")
    page.fill("input[name=size]", "3")
    uniform = _launch(page)
    page.wait_for_selector(f"tr[data-round='{uniform}'][data-state='active']", timeout=60_000)
    assert Generation.objects.get(number=uniform).strategy == "uniform"
    page.click(f"tr[data-round='{uniform}'] button[data-action=cancel]")
    assert f"Cancel round {uniform}?" in page.locator("#confirm-title").inner_text()
    snap(page, "05-rounds-confirm-cancel")
    _confirm(page, accept=False)
    page.wait_for_selector(f"#rounds-status:has-text('Round {uniform} kept.')")
    assert Generation.objects.get(number=uniform).state == "active"
    page.click(f"tr[data-round='{uniform}'] button[data-action=cancel]")
    _confirm(page, accept=True)
    page.wait_for_selector(f"tr[data-round='{uniform}'][data-state='cancelled']")
    cancelled = Generation.objects.get(number=uniform)
    assert set(cancelled.tasks.values_list("state", flat=True)) == {"cancelled"}

    # Train the first PRM from the registered base model on the labels so far.
    page.click("nav a:has-text('PRM')")
    page.wait_for_url("**/console/prm/")
    option = page.locator("select[name=base_model] option[value=tiny-test]")
    assert "found" in option.inner_text() and "parameters" in option.inner_text()
    page.fill("input[name=name]", "prm-1")
    page.fill("input[name=epochs]", "2")
    page.fill("input[name=max_length]", "256")
    page.click("#train-button")
    page.wait_for_selector("#versions-table tr[data-name='prm-1']")
    page.wait_for_selector("#run-log-panel:not([hidden])")
    snap(page, "06-prm-training")
    page.wait_for_selector(
        "#runs-table tr[data-state=succeeded], #runs-table tr[data-state=failed]",
        timeout=240_000,
    )
    version = PRMVersion.objects.get(name="prm-1")
    run = version.runs.get()
    assert run.state == "succeeded", run.log + run.error
    # Trained on the imported labels (the screening question without gold does not vote).
    assert 0 < version.data_snapshot["labelings"] <= imported_labels
    # The live log is on the page; the held-out set is far below the minimum, so it stayed ready.
    log = page.locator("#run-log").inner_text()
    assert "attempt 1 started" in log and "too few to mean anything" in log
    page.wait_for_selector("#versions-table tr[data-name='prm-1'][data-state=ready]")
    row = page.locator("#versions-table tr[data-name='prm-1']")
    assert "labelings" in row.inner_text()
    # Its held-out set (a handful of labeled problems at most) is flagged as too small.
    assert re.fullmatch(r"\d+ solutions · \d+ steps", row.locator("td.heldout.small").inner_text())
    snap(page, "07-prm-ready")

    # Activate: refused with the reason on the page; the override asks first.
    row.locator("button[data-action=activate]").click()
    refusal = row.locator(".refusal")
    refusal.wait_for()
    assert refusal.inner_text().startswith("prm-1 stays ready: its metrics were measured on")
    assert "too few to mean anything" in refusal.inner_text()
    row.locator("button[data-action=force]").click()
    assert "Activate prm-1 anyway?" in page.locator("#confirm-title").inner_text()
    _confirm(page, accept=False)
    assert PRMVersion.objects.get(name="prm-1").state == "ready"
    row.locator("button[data-action=force]").click()
    _confirm(page, accept=True)
    page.wait_for_selector("#versions-table tr[data-name='prm-1'][data-state=active]")
    assert "Active PRM: prm-1" in page.locator("#active-notice").inner_text()
    snap(page, "08-prm-active")

    # Retiring the active PRM asks first; declining keeps it.
    page.click("#versions-table tr[data-name='prm-1'] button[data-action=retire]")
    assert "Retire prm-1, the active PRM?" in page.locator("#confirm-title").inner_text()
    _confirm(page, accept=False)
    page.wait_for_selector("#versions-errors:has-text('prm-1 stays active.')")
    assert PRMVersion.objects.get(name="prm-1").state == "active"

    # The form's defaults now rank by the active PRM; the worker scores the pool and selects.
    page.click("nav a:has-text('Rounds')")
    assert "Active PRM: prm-1" in page.locator("#prm-notice").inner_text()
    assert page.locator("select[name=strategy]").input_value() == "convincing_wrong_answer"
    assert page.locator("select[name=prm_version] option:checked").inner_text() == (
        "prm-1 (active)"
    )
    page.fill("input[name=size]", "4")
    ranked = _launch(page)
    page.wait_for_selector(
        f"tr[data-round='{ranked}'][data-state='active'], "
        f"tr[data-round='{ranked}'][data-state='failed']",
        timeout=120_000,
    )
    chosen = Generation.objects.get(number=ranked)
    assert chosen.state == "active", chosen.progress
    assert chosen.prm_version.name == "prm-1" and chosen.tasks.count() == 4
    snap(page, "09-rounds-active")

    # A labeler labels the round's tasks; the beat task marks it finished; the console shows it.
    assert _label_all_tasks(page.context.browser, live_server.url, "lou") == 4
    assert finish_rounds.delay().get(timeout=60) == 1
    page.wait_for_selector(f"tr[data-round='{ranked}'][data-state='finished']", timeout=30_000)
    assert "0 · 0 · 4 / 4" in page.locator(f"tr[data-round='{ranked}'] .counts").inner_text()
    page.wait_for_selector("#labelers-table td:has-text('lou')")  # the figures followed
    snap(page, "10-rounds-finished")

    # Now retire it for real: no PRM is active any more, and the page says so.
    page.click("nav a:has-text('PRM')")
    page.click("#versions-table tr[data-name='prm-1'] button[data-action=retire]")
    _confirm(page, accept=True)
    page.wait_for_selector("#versions-table tr[data-name='prm-1'][data-state=retired]")
    assert "No PRM is active." in page.locator("#active-notice").inner_text()
    snap(page, "11-prm-retired")


def test_generating_a_pool_from_the_console(
    page, live_server, celery_worker_process, tmp_path, settings
):
    """The generation form samples solutions on the worker; the run's progress and counts
    show live, the pool grows, and the same request again samples nothing new."""
    from django.contrib.auth import get_user_model

    from labeling.models import Labeler, Solution
    from training import services as training

    admin = get_user_model().objects.create_user(username="ada", password=PASSWORD)
    Labeler.objects.create(user=admin, role="admin", screening_status="passed")
    from training.prm.backbones import default_model_dir, ensure_local_model

    # The real default generator's model (SmolLM2, converted once from the installed package as
    # the set-up does): a random tiny model never writes an answer, so nothing would be kept.
    smollm2 = ensure_local_model(default_model_dir(settings.STEPWISE_MODEL_DIR))
    training.base_model_register(name="smollm2-test", path=str(smollm2))
    settings.STEPWISE_GENERATORS = {
        "smollm2-short": {"backend": "local", "model": "smollm2-test", "force_answer": True},
        "gone": {"backend": "local", "model": "no-such-model"},
    }
    settings.STEPWISE_GENERATOR_DEFAULT = "smollm2-short"
    easy = tmp_path / "easy.jsonl"  # a short problem keeps the CPU sampling to about a minute
    easy.write_text(
        json.dumps({"problem": "What is $2 + 3$?", "answer": "5", "unique_id": "test/e2e/1.json"})
        + "\n"
    )

    log_in(page, "ada", "/console/data/")
    _upload(page, "problems", easy)
    page.reload()
    assert page.locator("select[name=generator] option[value=gone]").is_disabled()
    assert (
        "Generator gone: model 'no-such-model'" in page.locator(".generator-problem").inner_text()
    )
    page.select_option("select[name=split]", "test")
    page.fill("input[name=samples]", "2")
    page.fill("input[name=limit]", "1")
    page.fill("input[name=max_new_tokens]", "200")
    page.click("#generate-button")
    page.wait_for_selector("#generate-status:has-text('queued')")
    page.wait_for_selector("#sampling-log:not([hidden])")
    page.wait_for_selector(
        "#sampling-table tr[data-state=succeeded], #sampling-table tr[data-state=failed]",
        timeout=400_000,
    )
    row = page.locator("#sampling-table tbody tr").first
    assert row.get_attribute("data-state") == "succeeded", page.locator(
        "#sampling-log"
    ).inner_text()
    result = row.locator("td.result").inner_text()
    assert result.startswith("kept ") and " of 2" in result, result
    assert "smollm2-short: 2 per problem × 1 problem," in row.inner_text()
    kept = Solution.objects.filter(source="generated", generator="smollm2-short").count()
    assert kept > 0 and result.startswith(f"kept {kept} of 2")
    page.wait_for_selector(f"[data-count=solutions]:has-text('{kept}')")
    snap(page, "12-data-generated")

    # The same request again: the API finds the first run; nothing new is sampled.
    page.click("#generate-button")
    page.wait_for_selector("#generate-status:has-text('This request was made before')")
    assert page.locator("#sampling-table tbody tr").count() == 1


def test_empty_pages_say_what_is_missing(page, live_server):
    """No base model, no runs, no data: the pages load and say so instead of failing."""
    from django.contrib.auth import get_user_model

    from labeling.models import Labeler

    admin = get_user_model().objects.create_user(username="ada", password=PASSWORD)
    Labeler.objects.create(user=admin, role="admin", screening_status="passed")
    log_in(page, "ada", "/console/prm/")
    page.wait_for_selector("#runs-status:has-text('No runs yet.')")
    assert page.locator("#train-button").is_disabled()
    assert "no base model registered" in page.locator("select[name=base_model]").inner_text()
    assert "No PRM versions yet." in page.locator("#versions-table").inner_text()
    page.goto("/console/data/")
    assert page.locator("#pool-section [data-count=problems]").inner_text() == "0"
    assert page.locator("#pool-section [data-count=candidates]").inner_text() == "0"
    page.goto("/console/")
    assert "import or generate some" in page.locator("#prm-notice").inner_text()
