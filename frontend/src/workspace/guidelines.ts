// The help dialog behind "?": how to rate (with worked examples of +1, 0 and -1, written for
// this project and checked against the PRM800K labeler instructions), how time is counted, and the keys.
import { el, kbd } from "../dom";
import { renderMathText } from "../math";

interface Example {
  rating: string;
  cls: string;
  when: string;
  problem: string;
  step: string;
  why: string;
}

const EXAMPLES: Example[] = [
  {
    rating: "Great (+1)",
    cls: "great",
    when:
      "Correct, checkable in about half a minute, fits the steps above, and moves the work on. An approach that later fails still counts, as long as it is something a capable student would reasonably try.",
    problem: "Find the sum of the roots of $x^2 - 7x + 10 = 0$.",
    step: "By Vieta's formulas the sum of the roots is $-(-7)/1 = 7$.",
    why: "True, and it answers the question directly.",
  },
  {
    rating: "Okay (0)",
    cls: "okay",
    when:
      "Correct and fitting, but it adds nothing: it restates the problem or an earlier step, cheers the solver on, or keeps grinding out cases after the pattern is already plain.",
    problem: "Find the sum of the roots of $x^2 - 7x + 10 = 0$.",
    step: "I need to find the roots of the quadratic $x^2 - 7x + 10 = 0$ and add them.",
    why: "Correct, but only restates the task.",
  },
  {
    rating: "Bad (-1)",
    cls: "bad",
    when:
      "Anything false (even in an otherwise right step), too terse to check without pen and paper, off-topic or garbled, or a move into an obvious dead end or a loop. One such step ends the task.",
    problem: "Find the sum of the roots of $x^2 - 7x + 10 = 0$.",
    step: "The quadratic factors as $(x-2)(x+5)$, so the roots are $2$ and $-5$.",
    why: "$(x-2)(x+5) = x^2 + 3x - 10$, not the given polynomial.",
  },
  {
    rating: "Bad (-1), at the answer",
    cls: "bad",
    when:
      "The step that states the final answer is rated for the whole solution: if the work above does not fully justify it, it is Bad even when the number matches the reference.",
    problem: "Find every real $x$ with $x^2 = 3x$.",
    step: "Dividing both sides by $x$ gives $x = 3$. Answer: $3$",
    why: "Dividing by $x$ silently drops the root $x = 0$, so the answer is incomplete.",
  },
];

const KEYS: [string[], string][] = [
  [["1", "g"], "Great (+1)"],
  [["2", "o"], "Okay (0)"],
  [["3", "b"], "Bad (-1)"],
  [["f"], "Flag the focused step as unsure (press again to clear)"],
  [["u", "Backspace"], "Undo the last rating or flag"],
  [["Enter", "n", "↓"], "Next step; on a finished task, submit"],
  [["↑", "k"], "Previous step (or click a step to change its rating)"],
  [["s"], "Submit a finished task"],
  [["x"], "Give up (asks for a reason)"],
  [["r"], "Report a bad problem (asks for a reason)"],
  [["?"], "This help; Esc closes it"],
];

export function buildGuidelines(): HTMLDialogElement {
  const examples = el("div", { class: "examples" });
  for (const ex of EXAMPLES) {
    const problem = el("div", { class: "math-text" });
    renderMathText(problem, ex.problem);
    const step = el("div", { class: "math-text example-step" });
    renderMathText(step, ex.step);
    const why = el("p", { class: "muted math-text" });
    renderMathText(why, `Why: ${ex.why}`);
    examples.append(
      el(
        "section",
        { class: `example example-${ex.cls}` },
        el("h4", { text: ex.rating }),
        el("p", { text: ex.when }),
        el("div", { class: "example-problem" }, el("span", { class: "muted", text: "Problem: " }), problem),
        el("div", { class: "example-row" }, el("span", { class: "muted", text: "Step: " }), step),
        why,
      ),
    );
  }
  const table = el("table", { class: "help-table" });
  for (const [keys, what] of KEYS) {
    table.append(el("tr", {}, el("td", {}, kbd(...keys)), el("td", { text: what })));
  }
  const close = el("button", { type: "button", class: "primary", text: "Close" });
  const dialog = el(
    "dialog",
    { id: "help-dialog", class: "help-dialog", "aria-labelledby": "help-title" },
    el("h2", { id: "help-title", text: "Guidelines" }),
    el("p", {
      text: "Rate each step on its own, assuming every step above it is as written. Steps appear one at a time. After the first Bad step, rate the alternatives offered for it; the task then ends. Ratings can be changed until you submit: if you notice a mistake you let through, fix that rating rather than giving up. Judge substance, not wording: a loose phrase whose meaning is clear is not Bad. Flag a step only when these rules do not cover it, and sparingly. Give up only when you cannot judge the solution at all; a broken problem statement (a missing figure, a question with no clear answer) is reported, not given up.",
    }),
    el("h3", { text: "Ratings, with examples" }),
    examples,
    el("h3", { text: "Time" }),
    el("p", {
      id: "timer-guideline",
      text: "The timer at the top counts active time only: it stops when this tab is hidden and after a minute without a key press, click or scroll, so pauses are not counted against you. Take the time a step needs.",
    }),
    el("h3", { text: "Keyboard" }),
    table,
    close,
  );
  close.addEventListener("click", () => dialog.close());
  return dialog;
}
