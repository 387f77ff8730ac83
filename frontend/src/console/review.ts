// One labeling, read-only, as its labeler saw it (/console/review/labelings/<id>/): drawn by the
// workspace's own view (workspace/view.ts, styles.css, math.ts) from the labeling, with the
// labeler's ratings and flags pressed, alternatives under the Bad step they were offered for,
// every control disabled; the steps the labeler never reached are folded away below.
// The gold form posts the labeling to /api/labeling/admin/gold/ (screening or a round's QC).
import "../styles.css";
import "./review.css";
import { call, ConsoleApiError } from "./api";
import type { Assignment } from "../labeling";
import { renderStepText } from "../math";
import { type ViewHandlers, WorkspaceView } from "../workspace/view";

type Rating = -1 | 0 | 1 | null;

interface ReviewAlternative {
  position: number;
  text: string;
  rating: Rating;
  flagged: boolean;
}

interface ReviewStep {
  position: number;
  text: string;
  rating: Rating;
  flagged: boolean;
  chosen_completion: number | null;
  alternatives: ReviewAlternative[];
  human_completion: { text: string | null; rating: Rating } | null;
}

export interface ReviewDetail {
  id: number;
  finish_reason: string;
  problem: { id: number; text: string; reference_answer: string };
  steps: ReviewStep[];
  unreached: { position: number; text: string }[];
}

const RATINGS: { rating: -1 | 0 | 1; label: string; cls: string }[] = [
  { rating: 1, label: "Great", cls: "great" },
  { rating: 0, label: "Okay", cls: "okay" },
  { rating: -1, label: "Bad", cls: "bad" },
];

function node<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const made = doc.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    made.setAttribute(name, value);
  }
  made.append(...children);
  return made;
}

/** The workspace's rating buttons for one row, disabled, with the labeler's choice pressed. */
function ratingGroup(doc: Document, title: string, rating: Rating, flagged: boolean): HTMLElement {
  const group = node(doc, "div", { class: "rating", role: "group", "aria-label": `${title}: rating given` });
  for (const r of RATINGS) {
    const button = node(
      doc,
      "button",
      {
        type: "button",
        class: `rate rate-${r.cls}`,
        "data-rating": String(r.rating),
        "aria-pressed": String(r.rating === rating),
        disabled: "",
      },
      node(doc, "span", { class: "rate-label" }, r.label),
    );
    group.append(button);
  }
  group.append(
    node(
      doc,
      "button",
      { type: "button", class: "flag", "aria-pressed": String(flagged), disabled: "" },
      node(doc, "span", { class: "rate-label" }, "Unsure"),
    ),
  );
  return group;
}

function row(
  doc: Document,
  kind: "step" | "alt",
  id: string,
  title: string,
  text: string,
  rating: Rating,
  flagged: boolean,
): HTMLLIElement {
  const body = node(doc, "div", { class: "item-text math-text" });
  renderStepText(body, text);
  return node(
    doc,
    "li",
    {
      id,
      class: `item item-${kind} rated readonly`,
      "data-kind": kind,
      "data-rating": rating === null ? "" : String(rating),
    },
    ratingGroup(doc, title, rating, flagged),
    node(doc, "div", { class: "item-body" }, node(doc, "div", { class: "item-title" }, title), body),
  );
}

const NO_HANDLERS: ViewHandlers = {
  rate: () => undefined,
  flag: () => undefined,
  focus: () => undefined,
  submit: () => undefined,
  undo: () => undefined,
  openReason: () => undefined,
  sendReason: () => undefined,
  checkAgain: () => undefined,
};

/** The labeling as the task the workspace was given: every step of the solution, each with the
 * alternatives the labeler rated for it. */
function asAssignment(detail: ReviewDetail): Assignment {
  const rated = detail.steps.map((s) => ({
    position: s.position,
    text: s.text,
    alternatives: s.alternatives.map((a) => ({ position: a.position, text: a.text })),
  }));
  const unreached = detail.unreached.map((u) => ({ position: u.position, text: u.text, alternatives: [] }));
  return {
    id: detail.id,
    lease_expires_at: "",
    problem: { text: detail.problem.text, reference_answer: detail.problem.reference_answer },
    steps: [...rated, ...unreached],
    draft: null,
  };
}

/** Builds the read-only view of one labeling into `root` with the workspace's own view
 * (workspace/view.ts): the rows the labeler reached, painted with their ratings and flags, the
 * rest hidden as the workspace hides them; every control disabled, the work bars left out. */
export function renderLabeling(doc: Document, root: HTMLElement, detail: ReviewDetail, focusId = ""): void {
  const view = new WorkspaceView(root, NO_HANDLERS);
  view.showTask(asAssignment(detail));
  detail.steps.forEach((step, i) => {
    const li = view.rows.steps[i];
    view.paintRow(li, step.rating, step.flagged, li.id === focusId);
    li.classList.add("readonly");
    const header = view.rows.altHeaders.get(i);
    if (header) {
      header.hidden = false;
    }
    step.alternatives.forEach((alt, j) => {
      const row = view.rows.alts.get(i)?.[j];
      if (row) {
        view.paintRow(row, alt.rating, alt.flagged, row.id === focusId);
        row.classList.add("readonly");
        if (step.chosen_completion === alt.position) {
          row.querySelector(".item-title")?.append(" (chosen)");
        }
      }
    });
    if (step.human_completion?.text) {
      // Phase 1: the step the labeler wrote themselves, under the row it replaced.
      const n = step.position + 1;
      const human = row(doc, "alt", `human-${step.position}`, `Step ${n} as the labeler wrote it`, step.human_completion.text, step.human_completion.rating, false);
      (header ?? li).after(human);
    }
  });
  if (!detail.steps.length) {
    view.stepList.prepend(node(doc, "li", { class: "item muted" }, "The labeler rated no step."));
  }
  // What the labeler worked with, not what they worked on: no status, queue, finish bar, keys.
  root.querySelectorAll<HTMLElement>(".status-bar, .finish-bar, #key-legend, #no-work, #notice, #confirmation").forEach((n) => {
    n.hidden = true;
  });
  root.querySelectorAll<HTMLButtonElement>("#steps button").forEach((b) => {
    b.disabled = true;
  });

  if (detail.unreached.length) {
    const hidden = node(doc, "ol", { class: "steps unreached", start: String(detail.unreached[0].position + 1) });
    for (const step of detail.unreached) {
      const body = node(doc, "div", { class: "item-text math-text" });
      renderStepText(body, step.text);
      hidden.append(
        node(
          doc,
          "li",
          { class: "item item-step", id: `unreached-${step.position}` },
          node(doc, "div", { class: "item-body" }, node(doc, "div", { class: "item-title" }, `Step ${step.position + 1}`), body),
        ),
      );
    }
    const count = detail.unreached.length;
    view.stepList.after(
      node(
        doc,
        "details",
        { class: "unreached-steps", id: "unreached" },
        node(doc, "summary", {}, `${count} later step${count === 1 ? "" : "s"} the labeler did not see`),
        hidden,
      ),
    );
  }
}

function startGoldForm(doc: Document, detail: ReviewDetail & { solution: { id: number } }): void {
  const form = doc.getElementById("gold-form") as HTMLFormElement | null;
  const result = doc.getElementById("gold-result");
  if (!form || !result) {
    return;
  }
  const kind = form.elements.namedItem("kind") as HTMLSelectElement;
  const round = form.elements.namedItem("generation_id") as HTMLSelectElement;
  const sync = () => {
    round.disabled = kind.value !== "qc";
    round.closest("label")?.toggleAttribute("hidden", kind.value !== "qc");
  };
  kind.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
    if (button) {
      button.disabled = true;
    }
    const body = {
      solution_id: detail.solution.id,
      kind: kind.value,
      generation_id: kind.value === "qc" ? Number(round.value) : null,
      expert_labeling_id: detail.id,
    };
    try {
      const task = await call<{ task_id: number; kind: string; gold_ratings: number[] }>(
        doc,
        "POST",
        "/api/labeling/admin/gold/",
        body,
      );
      const where = task.kind === "qc" ? `a QC item of round ${round.selectedOptions[0]?.text ?? ""}` : "a screening item";
      const gold = task.gold_ratings.map((r) => (r > 0 ? "+1" : String(r).replace("-", "−"))).join(" ");
      result.textContent = `Done: this solution is now ${where} (task ${task.task_id}), gold ${gold}.`;
      result.dataset.kind = "saved";
    } catch (err) {
      result.textContent =
        err instanceof ConsoleApiError ? `Not made gold: ${err.message}` : `Not made gold: ${String(err)}`;
      result.dataset.kind = "error";
    } finally {
      if (button) {
        button.disabled = false;
      }
    }
  });
}

function boot(): void {
  const data = document.getElementById("labeling-data");
  const root = document.getElementById("labeling-view");
  if (!data || !root) {
    return;
  }
  const detail = JSON.parse(data.textContent ?? "{}") as ReviewDetail & { solution: { id: number } };
  // A link to #step-N (from a flagged or disputed step) lands on that row, focused.
  const focusId = window.location.hash.slice(1);
  renderLabeling(document, root, detail, focusId);
  startGoldForm(document, detail);
  const target = focusId ? document.getElementById(focusId) : null;
  target?.scrollIntoView({ block: "center" });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", boot);
} else {
  boot();
}
