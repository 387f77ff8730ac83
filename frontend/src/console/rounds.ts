// The round dashboard: a table of rounds refreshed by polling, the launch form, and actions.
import { call, ConsoleApiError, type FieldErrors } from "./api";
import { confirmAction } from "./confirm";
import { el, refreshSection } from "./dom";
import {
  actionsFor,
  anyLaunching,
  launchBody,
  paramsSummary,
  percent,
  progressText,
  roundCountsText,
  roundDoneShare,
} from "./format";
import type { Round } from "./types";

const FAST_POLL_MS = 1500;
const SLOW_POLL_MS = 5000;

function row(doc: Document, round: Round, act: (round: Round, action: string) => void): HTMLTableRowElement {
  const tr = el(doc, "tr");
  tr.dataset.round = String(round.number);
  tr.dataset.state = round.state;
  const c = round.counts;
  const cell = (text: string, cls?: string) => {
    const td = el(doc, "td", text, cls);
    tr.append(td);
    return td;
  };
  const imported = Boolean(c?.is_import);
  tr.dataset.imported = String(imported);
  cell(String(round.number));
  cell(imported ? "imported" : round.state, `state state-${imported ? "imported" : round.state}`);
  cell(`${round.strategy}${round.strategy_params && Object.keys(round.strategy_params).length ? ` (${paramsSummary(round.strategy_params)})` : ""}`);
  cell(round.prm_version ? round.prm_version.name : "–");

  const progressCell = cell("");
  // While launching: the launch pipeline's progress; afterwards: the share of tasks labeled.
  // Imported generations and rounds without tasks get no bar (a full one would claim work done).
  const share = roundDoneShare(round);
  if (share !== null) {
    const bar = el(doc, "progress");
    bar.max = 1;
    bar.value = share;
    progressCell.append(bar, " ");
  }
  const text = imported ? "labels imported from a file" : progressText(round) || (share === null ? "no tasks" : "");
  progressCell.append(el(doc, "span", text, "progress-text"));

  cell(roundCountsText(round), "counts");
  cell(c ? String(c.labelings) : "–");
  cell(c ? percent(c.wrong_answer_share) : "–");
  cell(c ? percent(c.found_error_share) : "–");

  const exports = cell("");
  const a1 = el(doc, "a", "PRM800K");
  a1.href = round.exports.prm800k;
  const a2 = el(doc, "a", "stepwise");
  a2.href = round.exports.stepwise;
  exports.append(a1, " · ", a2);

  const actions = cell("");
  for (const action of actionsFor(round.state)) {
    const button = el(doc, "button", action[0].toUpperCase() + action.slice(1));
    button.type = "button";
    button.dataset.action = action;
    button.addEventListener("click", () => act(round, action));
    actions.append(button, " ");
  }
  return tr;
}

function showErrors(doc: Document, form: HTMLFormElement, errors: FieldErrors | null, fallback: string): void {
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  const box = doc.getElementById("launch-errors");
  const loose: string[] = [];
  for (const [field, msgs] of Object.entries(errors ?? {})) {
    const text = Array.isArray(msgs) ? msgs.join(" ") : String(msgs);
    const input = form.elements.namedItem(field === "strategy_params" ? "strategy" : field);
    if (input instanceof HTMLElement && field !== "detail") {
      const p = el(doc, "span", text, "field-error");
      p.dataset.field = field;
      input.closest("label")?.append(p);
    } else {
      loose.push(text);
    }
  }
  if (box) {
    box.textContent = loose.join(" ") || (errors ? "" : fallback);
  }
}

export function startRoundsPage(doc: Document): void {
  const tbody = doc.querySelector<HTMLTableSectionElement>("#rounds-table tbody");
  const status = doc.getElementById("rounds-status");
  const form = doc.getElementById("launch-form") as HTMLFormElement | null;
  if (!tbody || !status || !form) {
    return;
  }
  let timer: number | undefined;
  // The last action's outcome stays in front of the polled summary until the next action.
  let notice = "";
  let seenLabelings: number | null = null;
  const say = (text: string) => {
    notice = text;
    status.textContent = text;
  };

  const refresh = async (): Promise<void> => {
    window.clearTimeout(timer);
    let rounds: Round[] = [];
    try {
      rounds = (await call<{ results: Round[] }>(doc, "GET", "/api/rounds/")).results;
      tbody.replaceChildren(...rounds.map((r) => row(doc, r, act)));
      // New labelings change the server-drawn figures below: fetch them again.
      const labelings = rounds.reduce((sum, r) => sum + (r.counts?.labelings ?? 0), 0);
      if (seenLabelings !== null && labelings !== seenLabelings) {
        await refreshSection(doc, "labels-section", "labelers-section");
      }
      seenLabelings = labelings;
      const summary = rounds.length ? `${rounds.length} rounds · updated ${new Date().toLocaleTimeString()}` : "No rounds yet.";
      status.textContent = notice ? `${notice} · ${summary}` : summary;
    } catch (err) {
      status.textContent = `Could not load rounds: ${err instanceof Error ? err.message : String(err)}`;
    }
    timer = window.setTimeout(refresh, anyLaunching(rounds) ? FAST_POLL_MS : SLOW_POLL_MS);
  };

  const act = async (round: Round, action: string): Promise<void> => {
    if (action === "cancel") {
      const c = round.counts;
      const open = c ? c.queued + c.paused : 0;
      const ok = await confirmAction(doc, {
        title: `Cancel round ${round.number}?`,
        message:
          `Its ${open} unclaimed task${open === 1 ? "" : "s"} leave the queue for good; labelings already ` +
          "submitted stay. A cancelled round cannot be resumed.",
        confirm: "Cancel the round",
      });
      if (!ok) {
        say(`Round ${round.number} kept.`);
        return;
      }
    }
    try {
      await call(doc, "POST", `/api/rounds/${round.number}/${action}/`);
      say(`Round ${round.number}: ${action} done.`);
    } catch (err) {
      say(err instanceof Error ? err.message : String(err));
    }
    await refresh();
  };

  const strategySelect = form.elements.namedItem("strategy") as HTMLSelectElement;
  const syncFieldsets = () => {
    form.querySelectorAll<HTMLFieldSetElement>("fieldset[data-for]").forEach((fs) => {
      fs.hidden = fs.dataset.for !== strategySelect.value;
    });
  };
  strategySelect.addEventListener("change", syncFieldsets);
  syncFieldsets();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields: Record<string, string> = {};
    new FormData(form).forEach((value, key) => {
      fields[key] = String(value);
    });
    const retrain = (form.elements.namedItem("retrain") as HTMLInputElement).checked;
    const button = doc.getElementById("launch-button") as HTMLButtonElement;
    button.disabled = true;
    try {
      const made = await call<Round>(doc, "POST", "/api/rounds/", launchBody(fields, retrain));
      showErrors(doc, form, {}, "");
      say(`Round ${made.number} launched.`);
    } catch (err) {
      if (err instanceof ConsoleApiError) {
        showErrors(doc, form, err.body, err.message);
      } else {
        showErrors(doc, form, null, String(err));
      }
    } finally {
      button.disabled = false;
    }
    await refresh();
  });

  void refresh();
}
