// Node-side checks of the pure parts (math splitting, the labeling walk and the submit body).
// Run with `npm test`: esbuild bundles this file for Node and runs it; any failure throws.
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
import { splitMath } from "../math";

let passed = 0;

function eq(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`${what}\n  expected ${e}\n  got      ${a}`);
  }
  passed += 1;
}

// ---- math splitting
eq(splitMath("plain <b>text</b>"), [{ kind: "text", text: "plain <b>text</b>" }], "text stays text");
eq(
  splitMath("a $x^2$ b"),
  [
    { kind: "text", text: "a " },
    { kind: "math", tex: "x^2", display: false },
    { kind: "text", text: " b" },
  ],
  "inline dollars",
);
eq(
  splitMath("$$\\frac12$$\\[y\\]\\(z\\)"),
  [
    { kind: "math", tex: "\\frac12", display: true },
    { kind: "math", tex: "y", display: true },
    { kind: "math", tex: "z", display: false },
  ],
  "display and paren delimiters",
);
eq(splitMath("costs \\$5 and $3"), [{ kind: "text", text: "costs $5 and $3" }], "escaped and unclosed $");
eq(
  splitMath("$a\\$b$"),
  [{ kind: "math", tex: "a\\$b", display: false }],
  "escaped dollar inside math",
);
eq(splitMath("$$ $$"), [{ kind: "text", text: "$$ $$" }], "empty math stays text");

eq(
  splitMath("Solve\n\\begin{align*}\nx &= 1\n\\end{align*}Find $x$."),
  [
    { kind: "text", text: "Solve\n" },
    { kind: "math", tex: "\\begin{align*}\nx &= 1\n\\end{align*}", display: true },
    { kind: "text", text: "Find " },
    { kind: "math", tex: "x", display: false },
    { kind: "text", text: "." },
  ],
  "bare align* is display math",
);
eq(
  splitMath("\\begin{tabular}{c}1\\end{tabular}"),
  [{ kind: "text", text: "\\begin{tabular}{c}1\\end{tabular}" }],
  "tabular stays text",
);
eq(
  splitMath("See [asy]draw((0,0)--(1,1));[/asy] now"),
  [
    { kind: "text", text: "See " },
    { kind: "figure", source: "draw((0,0)--(1,1));" },
    { kind: "text", text: " now" },
  ],
  "asymptote figures are set apart",
);

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

let s = initialState(task);
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

// Changing the Bad step back reveals the next step again; the alternatives are kept aside.
const changed = rate(task, focusOn(task, s, { kind: "step", index: 1 }), 0);
eq(errorStep(changed), -1, "no error after the change");
eq(lastVisibleStep(changed), 2, "step 3 appears");
eq(changed.focus, { kind: "step", index: 2 }, "focus on the open step");
const solved = rate(task, changed, 1);
eq(outcome(task, solved), "solution", "solution when all rated without Bad");
eq(submitSteps(task, solved, "solution").length, 3, "solution body has every step");

// Movement is clamped to the visible items; focus on hidden items is refused.
eq(move(task, initialState(task), -1).focus, { kind: "step", index: 0 }, "move clamps");
const fresh = initialState(task);
eq(focusOn(task, fresh, { kind: "step", index: 2 }), fresh, "hidden step cannot be focused");

// Drafts: restored when they fit, refused when they do not.
const restored = restoreState(task, JSON.parse(JSON.stringify(s)));
eq(restored?.steps, s.steps, "draft round trip");
eq(restoreState(task, { v: 1, steps: [] }), null, "a draft for other steps is refused");
eq(restoreState(task, "junk"), null, "junk is refused");
eq(
  restoreState(task, { v: 1, steps: [{ rating: 7 }, {}, {}], alts: {} })?.steps[0],
  { rating: null, flagged: false },
  "invalid ratings are dropped",
);

console.log(`frontend logic: ${passed} checks passed`);
