// The PRM page: train a version from a base model, watch its run (progress and live log), and
// activate or retire versions. The versions table is drawn by the server; it is fetched again
// whenever an action or a run changes it.
import { call, ConsoleApiError } from "./api";
import { confirmAction } from "./confirm";
import { el, refreshSection, when } from "./dom";
import { anyUnfinished, latestLogLine, percent, trainBody } from "./format";
import type { Page, PRMVersionOut, TrainingRun } from "./types";

const FAST_POLL_MS = 1500;
const SLOW_POLL_MS = 6000;
const RUNS_API = "/api/training/runs/?limit=15";

function latestText(run: TrainingRun): string {
  if (run.state === "failed") {
    return latestLogLine(run.error || run.log);
  }
  // Queued work waits for the gpu worker, which runs one job at a time.
  return latestLogLine(run.log) || (run.state === "queued" ? "waiting for the gpu worker" : "");
}

function versionNames(doc: Document): Map<number, string> {
  const names = new Map<number, string>();
  doc.querySelectorAll<HTMLTableRowElement>("#versions-table tr[data-version]").forEach((tr) => {
    names.set(Number(tr.dataset.version), tr.dataset.name ?? "");
  });
  return names;
}

async function refreshVersions(doc: Document): Promise<void> {
  await refreshSection(doc, "versions-section", "active-notice");
}

function startRuns(doc: Document): { refresh: () => Promise<void>; show: (id: number) => void } {
  const tbody = doc.querySelector<HTMLTableSectionElement>("#runs-table tbody") as HTMLTableSectionElement;
  const status = doc.getElementById("runs-status") as HTMLElement;
  const panel = doc.getElementById("run-log-panel") as HTMLElement;
  const title = doc.getElementById("run-log-title") as HTMLElement;
  const logBox = doc.getElementById("run-log") as HTMLPreElement;
  let timer: number | undefined;
  let shown: number | null = null;
  let states = new Map<number, string>();

  const render = (runs: TrainingRun[]) => {
    const names = versionNames(doc);
    tbody.replaceChildren(
      ...runs.map((run) => {
        const tr = el(doc, "tr");
        tr.dataset.run = String(run.id);
        tr.dataset.state = run.state;
        const bar = el(doc, "progress");
        bar.max = 1;
        bar.value = run.progress;
        const progress = el(doc, "td");
        progress.append(bar, ` ${percent(run.progress)}`);
        const button = el(doc, "button", shown === run.id ? "Hide log" : "Log");
        button.type = "button";
        button.dataset.action = "log";
        button.addEventListener("click", () => {
          shown = shown === run.id ? null : run.id;
          render(runs);
        });
        const logCell = el(doc, "td");
        logCell.append(button);
        tr.append(
          el(doc, "td", String(run.id)),
          el(doc, "td", names.get(run.prm_version) ?? `version ${run.prm_version}`),
          el(doc, "td", run.kind),
          el(doc, "td", run.state, `state state-${run.state}`),
          progress,
          el(doc, "td", latestText(run), "progress-text"),
          el(doc, "td", when(run.started_at)),
          el(doc, "td", when(run.finished_at)),
          logCell,
        );
        return tr;
      }),
    );
    const current = runs.find((r) => r.id === shown);
    panel.hidden = !current;
    if (current) {
      const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 8;
      title.textContent = `Log of run ${current.id} (${names.get(current.prm_version) ?? current.prm_version}, ${current.state})`;
      logBox.textContent = (current.log || "(no log yet)") + (current.state === "failed" && current.error ? `\n${current.error}` : "");
      if (atBottom) {
        logBox.scrollTop = logBox.scrollHeight; // follow the log unless the admin scrolled up
      }
    }
  };

  const refresh = async (): Promise<void> => {
    window.clearTimeout(timer);
    let runs: TrainingRun[] = [];
    try {
      runs = (await call<Page<TrainingRun>>(doc, "GET", RUNS_API)).results;
      // A run that changed state may have made, readied or promoted a version.
      const changed = runs.some((r) => states.has(r.id) && states.get(r.id) !== r.state);
      states = new Map(runs.map((r) => [r.id, r.state]));
      if (changed) {
        await refreshVersions(doc);
      }
      render(runs);
      status.textContent = runs.length
        ? `${runs.filter((r) => r.state === "running").length} running, ${runs.filter((r) => r.state === "queued").length} queued · updated ${new Date().toLocaleTimeString()}`
        : "No runs yet.";
    } catch (err) {
      status.textContent = `Could not load runs: ${err instanceof Error ? err.message : String(err)}`;
    }
    timer = window.setTimeout(refresh, anyUnfinished(runs) ? FAST_POLL_MS : SLOW_POLL_MS);
  };

  void refresh();
  return {
    refresh,
    show: (id: number) => {
      shown = id;
    },
  };
}

function startTrainForm(doc: Document, runs: { refresh: () => Promise<void>; show: (id: number) => void }): void {
  const form = doc.getElementById("train-form") as HTMLFormElement | null;
  const errors = doc.getElementById("train-errors");
  if (!form || !errors) {
    return;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields: Record<string, string> = {};
    new FormData(form).forEach((value, key) => {
      fields[key] = String(value);
    });
    const numeric = Array.from(form.querySelectorAll<HTMLInputElement>("input[type=number]")).map((i) => i.name);
    const activate = (form.elements.namedItem("activate") as HTMLInputElement).checked;
    const button = doc.getElementById("train-button") as HTMLButtonElement;
    button.disabled = true;
    form.querySelectorAll(".field-error").forEach((n) => n.remove());
    errors.textContent = "";
    try {
      const made = await call<{ version: PRMVersionOut; run: TrainingRun }>(
        doc,
        "POST",
        "/api/training/versions/",
        trainBody(fields, activate, numeric),
      );
      errors.textContent = "";
      await refreshVersions(doc);
      runs.show(made.run.id);
      // The next free name, so a second click does not collide with this one.
      const name = form.elements.namedItem("name") as HTMLInputElement;
      const match = made.version.name.match(/^(.*?)(\d+)$/);
      name.value = match ? `${match[1]}${Number(match[2]) + 1}` : `${made.version.name}-2`;
    } catch (err) {
      if (err instanceof ConsoleApiError && err.body) {
        const loose: string[] = [];
        for (const [field, msgs] of Object.entries(err.body)) {
          const msg = Array.isArray(msgs) ? msgs.join(" ") : String(msgs);
          const input = form.elements.namedItem(field);
          if (input instanceof HTMLElement && field !== "detail") {
            const span = el(doc, "span", msg, "field-error");
            span.dataset.field = field;
            input.closest("label")?.append(span);
          } else {
            loose.push(msg);
          }
        }
        errors.textContent = loose.join(" ");
      } else {
        errors.textContent = err instanceof Error ? err.message : String(err);
      }
    } finally {
      button.disabled = false;
    }
    await runs.refresh();
  });
}

async function versionAction(doc: Document, row: HTMLTableRowElement, action: string): Promise<void> {
  const id = row.dataset.version;
  const name = row.dataset.name ?? "";
  const errors = doc.getElementById("versions-errors") as HTMLElement;
  errors.textContent = "";
  const url = `/api/training/versions/${id}/${action === "force" ? "activate" : action}/`;
  const body: unknown = action === "force" ? { force: true } : action === "activate" ? { force: false } : undefined;
  if (action === "retire" && row.dataset.state === "active") {
    const ok = await confirmAction(doc, {
      title: `Retire ${name}, the active PRM?`,
      message:
        "No PRM will be active: rounds that rank by PRM scores need another version until one is activated. " +
        "Its checkpoint and scores are kept; it can be activated again.",
      confirm: "Retire it",
    });
    if (!ok) {
      errors.textContent = `${name} stays active.`;
      return;
    }
  }
  if (action === "force") {
    const reason = row.dataset.refusal ?? "";
    const ok = await confirmAction(doc, {
      title: `Activate ${name} anyway?`,
      message: `${reason ? `It was refused: ${reason}. ` : ""}Forcing skips the promotion checks; the active version, if any, is retired. The override is recorded.`,
      confirm: "Activate anyway",
    });
    if (!ok) {
      errors.textContent = `${name} was not activated.`;
      return;
    }
  }
  try {
    await call(doc, "POST", url, body);
    await refreshVersions(doc);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    errors.textContent = reason;
    if (action === "activate" && err instanceof ConsoleApiError && err.status === 400) {
      // The refusal stays in its row, with the override next to it.
      errors.textContent = "";
      row.dataset.refusal = reason;
      const cell = row.querySelector("td.actions");
      if (cell && !cell.querySelector("button[data-action=force]")) {
        const note = el(doc, "div", reason, "refusal");
        const force = el(doc, "button", "Activate anyway", "danger-outline");
        force.type = "button";
        force.dataset.action = "force";
        cell.append(note, force);
      }
    }
  }
}

export function startPrmPage(doc: Document): void {
  const runs = startRuns(doc);
  startTrainForm(doc, runs);
  // Delegated: the versions section is replaced whenever it changes.
  doc.addEventListener("click", (event) => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>("#versions-table button[data-action]");
    const row = button?.closest<HTMLTableRowElement>("tr[data-version]");
    if (button && row) {
      button.disabled = true;
      void versionAction(doc, row, button.dataset.action as string).finally(() => {
        button.disabled = false;
      });
    }
  });
}
