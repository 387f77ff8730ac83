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

const DELIMITERS: { open: string; close: string; display: boolean }[] = [
  // Longest openers first, so "$$" is not read as an empty "$...$".
  { open: "$$", close: "$$", display: true },
  { open: "\\[", close: "\\]", display: true },
  { open: "\\(", close: "\\)", display: false },
  { open: "$", close: "$", display: false },
];

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

/** Splits text into text and math segments. Unclosed delimiters stay text. */
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
      if (end < 0 || (d.open === "$" && end === start)) {
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
  const segments = splitMath(text);
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
export function renderAnswer(target: HTMLElement, answer: string): void {
  if (/\$|\\\(|\\\[/.test(answer)) {
    renderMathText(target, answer);
    return;
  }
  target.replaceChildren(renderTex(answer, false));
}
