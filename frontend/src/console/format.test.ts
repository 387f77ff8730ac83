// The console's pure helpers, run by `node --test` through `npm test` (frontend/test.mjs), which
// tests/e2e/test_frontend_logic.py runs in the test command.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  actionsFor,
  anyUnfinished,
  importErrorText,
  importResultText,
  latestLogLine,
  launchBody,
  percent,
  progressText,
  roundCountsText,
  roundDoneShare,
  samplingCountsText,
  trainBody,
} from "./format";
import { describe } from "./api";
import type { Round } from "./types";

function eq(actual: unknown, expected: unknown, what: string): void {
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), what);
}

test("console format helpers", () => {
  const form = {
    prm_version: "7",
    strategy: "convincing_wrong_answer",
    size: "100",
    labelings_per_task: "2",
    qc_rate: "0.05",
    wrong_share: "0.8",
    scope: "global",
    per_problem: "4",
    per_problem_cap: "",
    seed: "3",
  };
  eq(
    launchBody(form, false),
    {
      prm_version: 7,
      strategy: "convincing_wrong_answer",
      strategy_params: { wrong_share: 0.8 },
      size: 100,
      labelings_per_task: 2,
      qc_rate: 0.05,
      retrain: false,
    },
    "convincing: only its own parameters, blank cap left out",
  );
  eq(
    launchBody({ ...form, scope: "per_problem", per_problem_cap: "2" }, true).strategy_params,
    { per_problem_cap: 2, wrong_share: 0.8, scope: "per_problem", per_problem: 4 },
    "per-problem scope sends per_problem",
  );
  eq(
    launchBody({ ...form, strategy: "uniform", prm_version: "" }, false),
    {
      prm_version: null,
      strategy: "uniform",
      strategy_params: { seed: 3 },
      size: 100,
      labelings_per_task: 2,
      qc_rate: 0.05,
      retrain: false,
    },
    "uniform: no PRM, the seed only",
  );
  eq(launchBody({ ...form, strategy: "uncertainty" }, false).strategy_params, {}, "uncertainty");

  eq(actionsFor("active"), ["pause", "cancel"], "active actions");
  eq(actionsFor("paused"), ["resume", "cancel"], "paused actions");
  eq(actionsFor("launching"), ["cancel"], "launching actions");
  eq(actionsFor("finished"), [], "finished actions");
  eq(percent(0.256), "26%", "percent");
  eq(percent(null), "–", "percent of nothing");

  const round = { state: "launching", progress: { stage: "scoring", message: "scored 5/9" } } as Round;
  eq(progressText(round), "scoring: scored 5/9", "launching shows the stage");
  eq(progressText({ ...round, state: "active", progress: { stage: "queued", message: "queued 5" } }), "queued 5", "active shows the summary");
  eq(
    progressText({ ...round, state: "failed", progress: { error: "Traceback\n  boom\nValueError: bad\n" } }),
    "failed: ValueError: bad",
    "failed shows the last line of the error",
  );

  eq(
    importResultText({ kind: "prm800k", lines: 9, created: { problems: 3, solutions: 9, labelings: 9, steps: 0 }, skipped: {} }),
    "Imported 9 lines: created 3 problems, 9 solutions, 9 labelings.",
    "import result names what was created, zeros left out",
  );
  eq(
    importResultText({ kind: "problems", lines: 2, created: {}, skipped: { problems: 2 } }),
    "Imported 2 lines: created nothing new; already here: 2 problems.",
    "a second import of the same file",
  );
  eq(
    importErrorText(400, { line: 3, field: "label.steps[0].completions", detail: "expected a list" }),
    "Nothing was imported: line 3, field label.steps[0].completions: expected a list",
    "a refused line names its line and field",
  );
  eq(importErrorText(400, { line: 1, field: null, detail: "not JSON" }), "Nothing was imported: line 1: not JSON", "no field");
  eq(importErrorText(413, { file: ["too big"] }), "Nothing was imported: file: too big", "other errors");
  eq(describe(400, { detail: ["v1 stays ready: too few"] }), "v1 stays ready: too few", "a detail list reads as text");
  eq(latestLogLine("2026-01-01 10:00:00 attempt 1 started\n2026-01-01 10:00:02 epoch 1/2\n"), "epoch 1/2", "latest log line");
  eq(anyUnfinished([{ state: "succeeded" }, { state: "queued" }]), true, "a queued run is unfinished");
  eq(anyUnfinished([{ state: "failed" }]), false, "finished runs");
  eq(
    trainBody({ name: " prm-1 ", base_model: "smollm2", kind: "prm", epochs: "", learning_rate: "0.0001" }, true, ["epochs", "learning_rate"]),
    { name: "prm-1", base_model: "smollm2", kind: "prm", activate: true, learning_rate: 0.0001 },
    "train body: blank options left to the defaults",
  );

  eq(
    samplingCountsText({ requested: 10, kept: 7, correct: 2, wrong: 5, ungraded: 0, no_answer: 2, truncated: 1, empty: 0, duplicates: 1, already_sampled: 0 }),
    "kept 7 of 10 (2 correct, 5 wrong); left out: 2 without an answer (1 cut at the token limit), 1 duplicates",
    "sampling counts: kept with grades, then what was left out",
  );
  eq(samplingCountsText({}), "–", "a queued run has no counts yet");
  eq(samplingCountsText({ requested: 0, kept: 0 }), "–", "a run that has drawn nothing yet");

  // Round counts: queued + leased never exceed the tasks, paused tasks still count as queued in a
  // paused round, imports are named as such and get no progress bar.
  const counts = {
    tasks: 10, queued: 3, leased: 2, done: 4, paused: 0, cancelled: 1, leases: 2, qc_items: 2,
    waiting: 3, imported: 0, is_import: false, labelings: 4, found_error: 1, selected: 10,
    selected_wrong: 5, wrong_answer_share: 0.5, found_error_share: 0.25, unfinished: 3,
  };
  const active = { state: "active", counts, progress: {} } as unknown as Round;
  eq(roundCountsText(active), "3 · 2 · 4 / 10 (1 withdrawn; +2 QC items)", "an active round's counts");
  eq(roundDoneShare(active), 0.4, "done share");
  const paused = { ...active, state: "paused", counts: { ...counts, queued: 1, paused: 3, cancelled: 0, qc_items: 0 } } as Round;
  eq(roundCountsText(paused), "4 · 2 · 4 / 10 (queued tasks wait for resume)", "a paused round still shows its queue");
  const cancelled = { ...active, state: "cancelled", counts: { ...counts, queued: 1, cancelled: 3, leases: 3, qc_items: 0 } } as Round;
  eq(
    roundCountsText(cancelled),
    "1 · 2 · 4 / 10 (3 withdrawn; 1 queued will not be served; 3 leases)",
    "a cancelled round says what is left and what will not be served",
  );
  const imported = { ...active, state: "finished", counts: { ...counts, tasks: 0, queued: 0, leased: 0, done: 0, cancelled: 0, imported: 3, is_import: true } } as Round;
  eq(roundCountsText(imported), "imported: 3 labelings, no tasks", "an imported generation is named as one");
  eq(roundDoneShare(imported), null, "no progress bar for an import");
  eq(roundDoneShare({ ...active, counts: { ...counts, tasks: 0 } } as Round), null, "no bar without tasks");
  eq(roundDoneShare({ ...active, state: "launching", progress: { fraction: 0.3 } } as Round), 0.3, "launching: the pipeline's fraction");
});
