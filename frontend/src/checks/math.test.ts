// Math splitting (math.ts): which dollars are math and which are money, run by `node --test`
// through `npm test`. The cases marked "real" are quoted from the data sets the project imports:
// MATH (math500.jsonl), PRM800K (prm800k_sample_phase2.jsonl) and GSM8K (processbench_gsm8k.json).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Segment, neutralizeBidi, splitAnswerLine, splitMath } from "../math";

function eq(actual: unknown, expected: unknown, what: string): void {
  assert.deepEqual(actual, expected, what);
}

const text = (t: string): Segment => ({ kind: "text", text: t });
const inline = (tex: string): Segment => ({ kind: "math", tex, display: false });
const display = (tex: string): Segment => ({ kind: "math", tex, display: true });

test("delimiters, environments and figures", () => {
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
});

test("single dollars follow pandoc's rule", () => {
  eq(splitMath("$x$"), [inline("x")], "the shortest math");
  eq(splitMath("$ x$"), [text("$ x$")], "an opening $ followed by a space is a dollar sign");
  eq(splitMath("$x $"), [text("$x $")], "a closing $ preceded by a space is a dollar sign");
  eq(splitMath("$x$5"), [text("$x$5")], "a closing $ followed by a digit is a dollar sign");
  eq(splitMath("$x$, $y$."), [inline("x"), text(", "), inline("y"), text(".")], "two in a row");
  eq(splitMath("$a\n\nb$"), [text("$a\n\nb$")], "inline math does not cross a blank line");
  eq(splitMath("$a\nb$"), [inline("a\nb")], "but may cross a single line break");
  eq(splitMath("$$ \\$ $$"), [display(" \\$ ")], "an escaped dollar inside display math");
  eq(splitMath("50$ and 20$"), [text("50$ and 20$")], "a trailing currency sign is text");
  eq(splitMath("it is $$"), [text("it is $$")], "a lone $$ is text");
});

test("real: GSM8K money is text", () => {
  const step =
    "Cost per gallon = $3.5, Total gallons purchased = 4000. Total cost = Cost per gallon * " +
    "Total gallons purchased = $3.5 * 4000 = $14,000.";
  eq(splitMath(step), [text(step)], "ProcessBench gsm8k: the milk refund step");
  const rewards =
    "The customer spent $80 on their last shopping trip. For every $20 spent, they get $1 off " +
    "their next purchase. First, we calculate the rewards from the last trip: $80 / $20 = 4 " +
    "rewards. The value of these rewards is 4 * $1 = $4.";
  eq(splitMath(rewards), [text(rewards)], "ProcessBench gsm8k: the shopping rewards step");
  eq(
    splitMath("the amount paid is $43 - $6 = $37."),
    [text("the amount paid is $43 - $6 = $37.")],
    "ProcessBench gsm8k: subtraction of amounts",
  );
  eq(
    splitMath("a refund of $2,800 for the unsellable milk. The answer is $\\boxed{2800}$."),
    [text("a refund of $2,800 for the unsellable milk. The answer is "), inline("\\boxed{2800}"), text(".")],
    "ProcessBench gsm8k: money, then a boxed answer in math",
  );
  eq(
    splitMath("Since there were 18 flamingos, \\(1/3 \\times 18 = 6\\) flamingos are taken back."),
    [text("Since there were 18 flamingos, "), inline("1/3 \\times 18 = 6"), text(" flamingos are taken back.")],
    "ProcessBench gsm8k: \\(...\\)",
  );
});

test("real: MATH and PRM800K math is math", () => {
  eq(
    splitMath("Enter your answer in the form $(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 \\pi.$"),
    [
      text("Enter your answer in the form "),
      inline("(r,\\theta),"),
      text(" where "),
      inline("r > 0"),
      text(" and "),
      inline("0 \\le \\theta < 2 \\pi."),
    ],
    "MATH-500: punctuation inside the math",
  );
  eq(
    splitMath("there are $5!$ ways to put the Democrats in their seats, and $5!$ ways"),
    [text("there are "), inline("5!"), text(" ways to put the Democrats in their seats, and "), inline("5!"), text(" ways")],
    "PRM800K: factorials",
  );
  eq(
    splitMath("So the total is $2\\cdot5!\\cdot5!=2\\cdot120\\cdot120=\\boxed{28800}$."),
    [text("So the total is "), inline("2\\cdot5!\\cdot5!=2\\cdot120\\cdot120=\\boxed{28800}"), text(".")],
    "PRM800K: a product ending in a boxed answer",
  );
  eq(
    splitMath("The ticket costs $\\$12.50$ per person."),
    [text("The ticket costs "), inline("\\$12.50"), text(" per person.")],
    "MATH: money written as math with an escaped dollar",
  );
  eq(
    splitMath("Kim earns \\$3 per hour, so $3h = 12$."),
    [text("Kim earns $3 per hour, so "), inline("3h = 12"), text(".")],
    "MATH: an escaped dollar in text before math",
  );
});

test("bidi controls are shown, not obeyed", () => {
  eq(neutralizeBidi("x = 5\u202E2 = y"), "x = 5[U+202E]2 = y", "right-to-left override");
  eq(neutralizeBidi("a\u2066b\u2069c\u202Ad"), "a[U+2066]b[U+2069]c[U+202A]d", "isolates and embeddings");
  eq(neutralizeBidi("\u200Fplain"), "\u200Fplain", "a right-to-left mark alone is left alone");
});

test("the # Answer line", () => {
  eq(splitAnswerLine("# Answer\n\n\\frac{5}{6}"), { before: "", answer: "\\frac{5}{6}" }, "PRM800K answer step");
  eq(splitAnswerLine("So $x=2$.\n\n# Answer\n\n2"), { before: "So $x=2$.", answer: "2" }, "text, then the answer");
  eq(splitAnswerLine("The answer is 2."), null, "no answer line");
  eq(splitAnswerLine("Step #2 gives an answer"), null, "a # inside a line is not a heading");
});

test("padded math from MATH, and money that looks padded", () => {
  eq(splitMath("yields $ x = \\boxed{83}$."), [text("yields "), inline(" x = \\boxed{83}"), text(".")], "MATH: padded opening");
  eq(splitMath("Since $ a > 0,$ we"), [text("Since "), inline(" a > 0,"), text(" we")], "MATH: padded relation");
  eq(splitMath("$\\triangle ACD $ is"), [inline("\\triangle ACD "), text(" is")], "MATH: padded closing");
  eq(
    splitMath("a television that costs $\\$$1500, according"),
    [text("a television that costs "), inline("\\$"), text("1500, according")],
    "MATH: a dollar sign set as math before the amount",
  );
  eq(
    splitMath("New price = $213.92 + $42.78 = $\\boxed{256.70}$."),
    [text("New price = $213.92 + $42.78 = "), inline("\\boxed{256.70}"), text(".")],
    "ProcessBench gsm8k: money, then a boxed answer",
  );
  eq(
    splitMath("($40.00): $5.00 + $40.00 = $\\boxed{\\$45.00}$."),
    [text("($40.00): $5.00 + $40.00 = "), inline("\\boxed{\\$45.00}"), text(".")],
    "ProcessBench gsm8k: a boxed amount with an escaped dollar",
  );
});
