// Node-side checks of the console's pure helpers; tests/active_learning/test_console_logic.py
// bundles this file with esbuild and runs it with node. Any failure throws.
import { actionsFor, launchBody, percent, progressText } from "./format";
import type { Round } from "./types";

let passed = 0;

function eq(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`${what}\n  expected ${e}\n  got      ${a}`);
  }
  passed += 1;
}

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

console.log(`console: ${passed} checks passed`);
