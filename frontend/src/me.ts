// The personal page at /me/: own tasks today, time per task, screening status, and the history
// of past labelings (the solution as rated; gold beside it for QC items of closed rounds).
import * as api from "./api";
import { el, formatDuration } from "./dom";
import { renderAnswer, renderStepText } from "./math";

const CHIP: Record<string, [string, string]> = {
  "1": ["Great +1", "great"],
  "0": ["Okay 0", "okay"],
  "-1": ["Bad −1", "bad"],
};

function chip(rating: -1 | 0 | 1 | null, prefix = ""): HTMLElement {
  if (rating === null) {
    return el("span", { class: "chip", text: `${prefix}not rated` });
  }
  const [text, cls] = CHIP[String(rating)];
  return el("span", { class: `chip chip-${cls}`, text: `${prefix}${text}` });
}

function historyItem(item: api.HistoryItem): HTMLElement {
  const problem = el("div", { class: "math-text history-step" });
  renderStepText(problem, item.problem);
  const answer = el("span", { class: "answer" });
  renderAnswer(answer, item.reference_answer);
  const steps = el("ol", { class: "history-steps" });
  for (const step of item.steps) {
    const text = el("div", { class: "math-text history-step" });
    renderStepText(text, step.text);
    const marks = el("div", { class: "history-marks" }, chip(step.rating));
    if (step.flagged) {
      marks.append(" ", el("span", { class: "chip", text: "unsure" }));
    }
    if (item.quality_control && step.gold !== null) {
      const gold = chip(step.gold, "gold: ");
      if (step.gold !== step.rating) {
        gold.classList.add("gold-differs");
      }
      marks.append(el("br"), gold);
    }
    steps.append(el("li", { "data-position": step.position }, el("span", { class: "muted", text: `${step.position + 1}.` }), text, marks));
    for (const alt of step.alternatives) {
      const altText = el("div", { class: "math-text history-step" });
      renderStepText(altText, alt.text);
      steps.append(el("li", { class: "history-alt" }, el("span", { class: "muted", text: "alt" }), altText, chip(alt.rating)));
    }
  }
  const summary = el(
    "summary",
    {},
    el("span", { text: new Date(item.finished_at).toLocaleString() }),
    el("strong", { text: REASON_TEXT[item.finish_reason] ?? item.finish_reason }),
    el("span", { class: "muted", text: formatDuration(item.total_time_ms) }),
  );
  if (item.quality_control) {
    const share = item.gold_agreement === null ? "–" : `${Math.round(item.gold_agreement * 100)}%`;
    summary.append(el("span", { class: "qc-result", text: `Quality check (round closed): ${share} of your ratings match gold` }));
  }
  const details = el(
    "details",
    { class: "history-item", "data-labeling": item.id, "data-qc": item.quality_control ? "1" : "" },
    summary,
    el("h3", { text: "Problem" }),
    problem,
    el("p", { class: "answer-line" }, "Reference answer: ", answer),
  );
  if (item.reason) {
    details.append(el("p", { class: "muted", text: `Your reason: ${item.reason}` }));
  }
  details.append(steps);
  return details;
}

const SCREENING_TEXT: Record<string, string> = {
  pending: "Not yet passed: you will get screening questions first.",
  passed: "Passed.",
  failed: "Not passed. Please contact an administrator.",
};

const REASON_TEXT: Record<string, string> = {
  found_error: "Found an error",
  solution: "Solution rated",
  give_up: "Gave up",
  bad_problem: "Reported bad problem",
};

export async function renderMe(root: HTMLElement): Promise<void> {
  root.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  let summary: api.MeSummary;
  try {
    summary = await api.me();
  } catch (err) {
    root.replaceChildren(
      el("p", { class: "notice", role: "alert", text: `Could not load your summary: ${(err as Error).message}` }),
    );
    return;
  }
  const stats = el(
    "dl",
    { class: "stats" },
    el("div", {}, el("dt", { text: "Tasks today" }), el("dd", { id: "tasks-today", text: String(summary.tasks_today) })),
    el(
      "div",
      {},
      el("dt", { text: "Mean active time per task today" }),
      el("dd", { id: "mean-time", text: formatDuration(summary.mean_time_ms_today) }),
    ),
    el(
      "div",
      {},
      el("dt", { text: "Screening" }),
      el(
        "dd",
        { id: "screening-status", "data-status": summary.screening_status },
        el("span", { class: `badge badge-${summary.screening_status}`, text: summary.screening_status }),
        " ",
        SCREENING_TEXT[summary.screening_status] ?? "",
      ),
    ),
  );
  const table = el("table", { id: "recent", class: "recent" });
  table.append(
    el("caption", { text: "Your recent labelings" }),
    el(
      "thead",
      {},
      el("tr", {}, el("th", { scope: "col", text: "Finished" }), el("th", { scope: "col", text: "Outcome" }), el("th", { scope: "col", text: "Active time" })),
    ),
  );
  const tbody = el("tbody");
  for (const item of summary.recent) {
    tbody.append(
      el(
        "tr",
        {},
        el("td", { text: new Date(item.finished_at).toLocaleString() }),
        el("td", { text: REASON_TEXT[item.finish_reason] ?? item.finish_reason }),
        el("td", { text: formatDuration(item.total_time_ms) }),
      ),
    );
  }
  if (!summary.recent.length) {
    tbody.append(el("tr", {}, el("td", { colspan: 3, class: "muted", text: "Nothing yet." })));
  }
  table.append(tbody);
  const history = el("section", { id: "history", class: "history", "aria-labelledby": "history-title" });
  history.append(
    el("h2", { id: "history-title", text: "Your past labelings" }),
    el("p", {
      class: "muted",
      text: "Open one to see the solution as you rated it. Quality-check items show the reference (gold) ratings once their round is closed.",
    }),
    ...summary.history.map(historyItem),
  );
  if (!summary.history.length) {
    history.append(el("p", { class: "muted", text: "Nothing yet." }));
  }
  root.replaceChildren(
    el("h1", { text: `Hello, ${summary.username}` }),
    stats,
    table,
    history,
    el("p", {}, el("a", { href: "/label/", class: "button primary", text: "Go to labeling" })),
  );
}
