// The labeling walk, drafts and the submit body (pure code of labeling.ts), run by `node --test`
// through `npm test` (frontend/test.mjs). Math splitting has its own file, math.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type Assignment,
  errorStep,
  focusOn,
  initialState,
  lastVisibleStep,
  move,
  outcome,
  rate,
  restoreState,
  submitSteps,
  toggleFlag,
  visibleItems,
} from "../labeling";

function eq(actual: unknown, expected: unknown, what: string): void {
  assert.deepEqual(JSON.parse(JSON.stringify(actual ?? null)), expected ?? null, what);
}

// ---- the labeling walk
const task: Assignment = {
  id: 1,
  lease_expires_at: "",
  problem: { text: "p", reference_answer: "1" },
  steps: [
    { position: 0, text: "s0", alternatives: [] },
    { position: 1, text: "s1", alternatives: [{ position: 1, text: "a1" }, { position: 2, text: "a2" }] },
    { position: 2, text: "s2", alternatives: [] },
  ],
  draft: null,
};

// The later tests start from the state this walk leaves (node:test runs them in order).
let s = initialState(task);

test("a Bad step ends the walk, its alternatives finish it", () => {
  eq(visibleItems(task, s), [{ kind: "step", index: 0 }], "only the first step is shown");
  s = rate(task, s, 1);
  eq(s.focus, { kind: "step", index: 1 }, "rating moves on");
  s = toggleFlag(task, s);
  s = rate(task, s, -1);
  eq(errorStep(s), 1, "a Bad step ends the walk");
  eq(s.focus, { kind: "alt", index: 0 }, "then the alternatives");
  eq(outcome(task, s), null, "not finished before the alternatives are rated");
  s = rate(task, s, 0);
  s = rate(task, s, 1);
  eq(outcome(task, s), "found_error", "found_error after the alternatives");
  eq(
    submitSteps(task, s, "found_error"),
    [
      { position: 0, rating: 1, flagged: false, alternatives: [] },
      {
        position: 1,
        rating: -1,
        flagged: true,
        alternatives: [
          { position: 1, rating: 0, flagged: false },
          { position: 2, rating: 1, flagged: false },
        ],
      },
    ],
    "found_error body",
  );
  eq(submitSteps(task, s, "give_up")[1].alternatives, [], "give_up sends no alternatives");

});

// Changing the Bad step back reveals the next step again; the alternatives are kept aside.
test("changing the Bad step back reveals the next step", () => {
  const changed = rate(task, focusOn(task, s, { kind: "step", index: 1 }), 0);
  eq(errorStep(changed), -1, "no error after the change");
  eq(lastVisibleStep(changed), 2, "step 3 appears");
  eq(changed.focus, { kind: "step", index: 2 }, "focus on the open step");
  const solved = rate(task, changed, 1);
  eq(outcome(task, solved), "solution", "solution when all rated without Bad");
  eq(submitSteps(task, solved, "solution").length, 3, "solution body has every step");
});

// Movement is clamped to the visible items; focus on hidden items is refused.
test("movement is clamped to the visible items", () => {
  eq(move(task, initialState(task), -1).focus, { kind: "step", index: 0 }, "move clamps");
  const fresh = initialState(task);
  eq(focusOn(task, fresh, { kind: "step", index: 2 }), fresh, "hidden step cannot be focused");
});

// Drafts: restored when they fit, refused when they do not.
test("drafts are restored when they fit", () => {
  const restored = restoreState(task, JSON.parse(JSON.stringify(s)));
  eq(restored?.steps, s.steps, "draft round trip");
  eq(restoreState(task, { v: 1, steps: [] }), null, "a draft for other steps is refused");
  eq(restoreState(task, "junk"), null, "junk is refused");
  eq(
    restoreState(task, { v: 1, steps: [{ rating: 7 }, {}, {}], alts: {} })?.steps[0],
    { rating: null, flagged: false },
    "invalid ratings are dropped",
  );
});
