// The personal page at /me/: own tasks today, time per task, screening status.
import * as api from "./api";
import { el, formatDuration } from "./dom";

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
  root.replaceChildren(
    el("h1", { text: `Hello, ${summary.username}` }),
    stats,
    table,
    el("p", {}, el("a", { href: "/label/", class: "button primary", text: "Go to labeling" })),
  );
}
