// Splits step and problem text into plain-text and LaTeX pieces and renders them into the DOM.
// Plain text is only ever inserted as Text nodes: a step containing "<script>" shows those
// characters and runs nothing. KaTeX builds its own DOM with `trust: false`, so \href, \url and
// friends are inert too.
import katex from "katex";

export type Segment =
  | { kind: "text"; text: string }
  | { kind: "math"; tex: string; display: boolean }
  | { kind: "figure"; source: string };

// MATH problems often use these environments without $...$ around them; KaTeX typesets them in
// display mode. (tabular is not math and KaTeX has no support for it: it stays text.)
const DISPLAY_ENVIRONMENTS = new Set([
  "align",
  "align*",
  "aligned",
  "alignat",
  "alignat*",
  "gather",
  "gather*",
  "equation",
  "equation*",
  "array",
  "matrix",
  "pmatrix",
  "bmatrix",
  "vmatrix",
  "cases",
]);

// Paired delimiters other than single dollars, which follow their own rule (dollarMath below).
const DELIMITERS: { open: string; close: string; display: boolean }[] = [
  { open: "$$", close: "$$", display: true },
  { open: "\\[", close: "\\]", display: true },
  { open: "\\(", close: "\\)", display: false },
];

// Bidirectional embedding, override and isolate controls (U+202A-202E, U+2066-2069): inside a
// step they can make "x = 5" display as "5 = x". They are shown as visible code points instead.
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/** Replaces bidi control characters with a visible "[U+202E]"-style marker. */
export function neutralizeBidi(text: string): string {
  return text.replace(
    BIDI_CONTROLS,
    (c) => `[U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}]`,
  );
}

/** Finds `close` at or after `from`, skipping backslash-escaped characters. */
function findClose(text: string, close: string, from: number): number {
  let i = from;
  while (i < text.length) {
    if (text.startsWith(close, i)) {
      return i;
    }
    // "\$" inside math is a literal dollar, not a closing delimiter; a backslash before "]" or
    // ")" only matters for the \] and \) closers, which are matched by startsWith above.
    if (text[i] === "\\" && close.startsWith("$")) {
      i += 2;
      continue;
    }
    i += 1;
  }
  return -1;
}

const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

/**
 * The end of inline math opened by the single "$" at `i`, or -1 when that "$" is a literal.
 *
 * Pandoc's rule (also markdown-it-texmath's): the opening "$" is followed by a non-space, the
 * first unescaped "$" after it closes, and that closing "$" is preceded by a non-space and not
 * followed by a digit; inline math does not run across a blank line. So "$3.5, ... = $14,000"
 * is money, while "$x$" and "$\$5$" are math.
 */
function dollarMath(text: string, i: number): number {
  const end = i + 1 < text.length ? findClose(text, "$", i + 1) : -1;
  if (end < 0) {
    return -1;
  }
  const tex = text.slice(i + 1, end);
  // MATH writes a dollar amount as "$\$$1500": math that is only a dollar sign, then digits.
  if (tex === "\\$") {
    return end;
  }
  if (isDigit(text[end + 1]) || !tex.trim() || tex.includes("\n\n")) {
    return -1;
  }
  const openPadded = isSpace(text[i + 1]);
  const closePadded = isSpace(text[end - 1]);
  if (!openPadded && !closePadded) {
    return end;
  }
  // One departure from pandoc: about 1% of MATH texts pad their math with spaces
  // ("$ x = \boxed{83}$", "$\triangle ACD $"). Padded content still counts as math when it
  // holds what money never does: a TeX command, a sub/superscript or a brace; with only the
  // opening padded, also a relation ("$ a > 0,$"). "= $42.78 = $\boxed{..}$" stays money.
  return (closePadded ? TEX_COMMAND : TEX_MARKER).test(tex) ? end : -1;
}

const TEX_COMMAND = /\\[A-Za-z]|[\^_{}]/;
const TEX_MARKER = /\\[A-Za-z]|[\^_{}=<>]/;

/** Splits text into text and math segments. Unclosed or unmatched delimiters stay text. */
export function splitMath(text: string): Segment[] {
  const out: Segment[] = [];
  let buffer = "";
  let i = 0;
  const flush = () => {
    if (buffer) {
      out.push({ kind: "text", text: buffer });
      buffer = "";
    }
  };
  outer: while (i < text.length) {
    // An escaped dollar ("\$5") is a literal dollar sign in text.
    if (text.startsWith("\\$", i)) {
      buffer += "$";
      i += 2;
      continue;
    }
    // [asy]...[/asy] is Asymptote source for a figure; it cannot be drawn here.
    if (text.startsWith("[asy]", i)) {
      const end = text.indexOf("[/asy]", i + 5);
      if (end >= 0) {
        flush();
        out.push({ kind: "figure", source: text.slice(i + 5, end).trim() });
        i = end + 6;
        continue;
      }
    }
    const env = /^\\begin\{([a-zA-Z]+\*?)\}/.exec(text.slice(i, i + 40));
    if (env && DISPLAY_ENVIRONMENTS.has(env[1])) {
      const close = `\\end{${env[1]}}`;
      const end = text.indexOf(close, i + env[0].length);
      if (end >= 0) {
        flush();
        out.push({ kind: "math", tex: text.slice(i, end + close.length), display: true });
        i = end + close.length;
        continue;
      }
    }
    for (const d of DELIMITERS) {
      if (!text.startsWith(d.open, i)) {
        continue;
      }
      const start = i + d.open.length;
      const end = findClose(text, d.close, start);
      if (end < 0) {
        continue;
      }
      const tex = text.slice(start, end);
      if (!tex.trim()) {
        continue;
      }
      flush();
      out.push({ kind: "math", tex, display: d.display });
      i = end + d.close.length;
      continue outer;
    }
    if (text[i] === "$") {
      // A "$$" that found no closing "$$" is two literal dollars, never an empty "$...$".
      if (text[i + 1] === "$") {
        buffer += "$$";
        i += 2;
        continue;
      }
      const end = dollarMath(text, i);
      if (end >= 0) {
        flush();
        out.push({ kind: "math", tex: text.slice(i + 1, end), display: false });
        i = end + 1;
        continue;
      }
    }
    buffer += text[i];
    i += 1;
  }
  flush();
  return out;
}

function renderTex(tex: string, display: boolean): HTMLElement {
  const holder = document.createElement("span");
  holder.className = display ? "math math-display" : "math math-inline";
  try {
    katex.render(tex, holder, {
      displayMode: display,
      throwOnError: false,
      trust: false,
      strict: "ignore",
      // Hostile or runaway TeX: sizes (\rule, \kern, \hspace) are capped at 10 em, and macro
      // expansion at 200 steps, so one step cannot blow up the page or hang the tab.
      maxSize: 10,
      maxExpand: 200,
    });
  } catch {
    // throwOnError=false covers parse errors; anything else falls back to the raw source as text.
    holder.textContent = tex;
  }
  return holder;
}

/** Replaces the children of `target` with `text` rendered as text plus KaTeX math. */
export function renderMathText(target: HTMLElement, text: string): void {
  target.replaceChildren();
  const segments = splitMath(neutralizeBidi(text));
  const isBlock = (seg: Segment | undefined) =>
    seg !== undefined && (seg.kind === "figure" || (seg.kind === "math" && seg.display));
  segments.forEach((seg, k) => {
    if (seg.kind === "text") {
      // A display block is already on its own line: drop one line break on each side of it,
      // or pre-wrap would add an empty line.
      let t = seg.text;
      if (isBlock(segments[k - 1])) {
        t = t.replace(/^[ \t]*\n?/, "");
      }
      if (isBlock(segments[k + 1])) {
        t = t.replace(/\n?[ \t]*$/, "");
      }
      target.appendChild(document.createTextNode(t));
    } else if (seg.kind === "figure") {
      const details = document.createElement("details");
      details.className = "figure-source";
      const summary = document.createElement("summary");
      summary.textContent = "Figure (Asymptote source; not drawn)";
      const pre = document.createElement("pre");
      pre.textContent = seg.source;
      details.append(summary, pre);
      target.appendChild(details);
    } else {
      target.appendChild(renderTex(seg.tex, seg.display));
    }
  });
}

/** Renders a reference answer: bare LaTeX ("\\frac{1}{2}") unless it carries its own delimiters. */
export function renderAnswer(target: HTMLElement, answer: string | null | undefined): void {
  const clean = neutralizeBidi((answer ?? "").trim());
  target.classList.toggle("answer-missing", clean === "");
  if (clean === "") {
    // Some problems carry no reference (PRM800K screening items, ProcessBench's pool): say so
    // rather than typesetting an empty box that reads as "the answer is blank".
    target.replaceChildren(document.createTextNode("none given"));
    return;
  }
  if (/\$|\\\(|\\\[/.test(clean)) {
    renderMathText(target, clean);
    return;
  }
  target.replaceChildren(renderTex(clean, false));
}

// PRM800K and MATH-style solutions end with a "# Answer" line followed by the final answer,
// written as bare LaTeX ("\\frac{5}{6}") like the reference answer.
const ANSWER_LINE = /^([\s\S]*?)(?:^|\n)[ \t]*#+[ \t]*Answer[ \t]*:?[ \t]*(?:\n+|$)([\s\S]*)$/;

/** Splits a step into the text before a "# Answer" line and the answer after it, if any. */
export function splitAnswerLine(text: string): { before: string; answer: string } | null {
  const m = ANSWER_LINE.exec(text);
  return m ? { before: m[1].trimEnd(), answer: m[2].trim() } : null;
}

/** Renders a step: text and math, and a "# Answer" line as a labeled, typeset answer. */
export function renderStepText(target: HTMLElement, text: string): void {
  const split = splitAnswerLine(text);
  if (!split) {
    renderMathText(target, text);
    return;
  }
  const before = document.createElement("div");
  renderMathText(before, split.before);
  const line = document.createElement("div");
  line.className = "answer-line step-answer";
  const label = document.createElement("span");
  label.className = "answer-label";
  label.textContent = "Answer: ";
  const value = document.createElement("span");
  value.className = "answer";
  renderAnswer(value, split.answer);
  line.append(label, value);
  target.replaceChildren(...(split.before.trim() ? [before] : []), line);
}
