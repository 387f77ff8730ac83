// The data page: file imports (problems, solutions, PRM800K) with their result or the refused
// line shown on the form, and the generator's form with its runs, refreshed by polling.
import { call, ConsoleApiError, send, upload } from "./api";
import { el, refreshSection, when } from "./dom";
import { anyUnfinished, importErrorText, importResultText, latestLogLine, samplingCountsText } from "./format";
import type { ImportResult, Page } from "./types";

const FAST_POLL_MS = 1500;
const SLOW_POLL_MS = 6000;
const SAMPLING_API = "/api/training/sampling-runs/";

/** training/apis.py SamplingRunOutput (the list leaves out the log; the detail has it). */
export interface SamplingRun {
  id: number;
  generator: string;
  state: string;
  progress: number;
  counts: Record<string, number>;
  cursor: number;
  problem_count: number;
  request: { samples?: number; seed?: number; sampling?: Record<string, unknown>; selection?: Record<string, unknown> };
  error: string;
  log?: string;
  created_by: string | null;
  created_at: string;
  finished_at: string | null;
}

function startImports(doc: Document): void {
  doc.querySelectorAll<HTMLFormElement>("form[data-import-kind]").forEach((form) => {
    const kind = form.dataset.importKind as string;
    const out = form.querySelector("output") as HTMLOutputElement;
    const button = form.querySelector("button[type=submit]") as HTMLButtonElement;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = form.querySelector("input[type=file]") as HTMLInputElement;
      if (!input.files || input.files.length === 0) {
        out.className = "import-result error";
        out.textContent = "Choose a file first.";
        return;
      }
      const body = new FormData();
      body.append("file", input.files[0]);
      button.disabled = true;
      out.className = "import-result";
      out.textContent = `Importing ${input.files[0].name}…`;
      try {
        const result = await upload<ImportResult>(doc, `/api/admin/imports/${kind}/`, body);
        // The counts above first, so the page is consistent once the result shows.
        await refreshSection(doc, "pool-section").catch(() => undefined);
        out.className = "import-result ok";
        out.textContent = importResultText(result);
        input.value = "";
      } catch (err) {
        out.className = "import-result error";
        out.textContent =
          err instanceof ConsoleApiError ? importErrorText(err.status, err.body) : `Nothing was imported: ${String(err)}`;
      } finally {
        button.disabled = false;
      }
    });
  });
}

function resultText(run: SamplingRun): string {
  if (run.state === "failed") {
    return `failed: ${latestLogLine(run.error)}`;
  }
  return samplingCountsText(run.counts);
}

function requestText(run: SamplingRun): string {
  const r = run.request ?? {};
  const temperature = r.sampling?.temperature;
  return `${run.generator}: ${r.samples ?? "?"} per problem × ${run.problem_count} problem${run.problem_count === 1 ? "" : "s"}${temperature !== undefined ? `, T=${temperature}` : ""}, seed ${r.seed ?? 0}`;
}

function startGeneration(doc: Document): void {
  const form = doc.getElementById("generate-form") as HTMLFormElement | null;
  const tbody = doc.querySelector<HTMLTableSectionElement>("#sampling-table tbody");
  const logBox = doc.getElementById("sampling-log") as HTMLPreElement | null;
  const errors = doc.getElementById("generate-errors");
  const status = doc.getElementById("generate-status") as HTMLElement;
  if (!form || !tbody || !logBox || !errors) {
    return;
  }
  let timer: number | undefined;
  let shownLog: number | null = null;
  let hadUnfinished = false;

  const render = (runs: SamplingRun[]) => {
    if (!runs.length) {
      tbody.replaceChildren(el(doc, "tr"));
      const td = el(doc, "td", "No generation runs yet.", "muted");
      td.colSpan = 7;
      tbody.firstElementChild?.append(td);
      return;
    }
    tbody.replaceChildren(
      ...runs.map((run) => {
        const tr = el(doc, "tr");
        tr.dataset.run = String(run.id);
        tr.dataset.state = run.state;
        const bar = el(doc, "progress");
        bar.max = 1;
        bar.value = run.progress ?? 0;
        const progress = el(doc, "td");
        progress.append(bar, " ", el(doc, "span", `${run.cursor}/${run.problem_count} problems`, "progress-text"));
        const show = el(doc, "button", shownLog === run.id ? "Hide" : "Show");
        show.type = "button";
        show.addEventListener("click", () => {
          shownLog = shownLog === run.id ? null : run.id;
          void refresh();
        });
        const logCell = el(doc, "td");
        logCell.append(show);
        tr.append(
          el(doc, "td", String(run.id)),
          el(doc, "td", requestText(run)),
          el(doc, "td", run.state, `state state-${run.state}`),
          progress,
          el(doc, "td", resultText(run), "result"),
          el(doc, "td", when(run.created_at)),
          logCell,
        );
        return tr;
      }),
    );
    logBox.hidden = shownLog === null;
  };

  const showLog = async (): Promise<void> => {
    if (shownLog === null) {
      return;
    }
    try {
      const run = await call<SamplingRun>(doc, "GET", `${SAMPLING_API}${shownLog}/`);
      const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 8;
      logBox.textContent = `Run ${run.id} (${run.state})\n${run.log || "(no log yet)"}${run.error ? `\n${run.error}` : ""}`;
      if (atBottom) {
        logBox.scrollTop = logBox.scrollHeight;
      }
    } catch (err) {
      logBox.textContent = `Could not load the log: ${err instanceof Error ? err.message : String(err)}`;
    }
  };

  const refresh = async (): Promise<void> => {
    window.clearTimeout(timer);
    let runs: SamplingRun[] = [];
    try {
      const page = await call<Page<SamplingRun> | SamplingRun[]>(doc, "GET", SAMPLING_API);
      runs = Array.isArray(page) ? page : page.results;
      render(runs);
      await showLog();
    } catch (err) {
      tbody.replaceChildren();
      errors.textContent = `Could not load generation runs: ${err instanceof Error ? err.message : String(err)}`;
    }
    const moving = anyUnfinished(runs);
    if (hadUnfinished && !moving) {
      await refreshSection(doc, "pool-section"); // a run just finished: new solutions
    }
    hadUnfinished = moving;
    timer = window.setTimeout(refresh, moving ? FAST_POLL_MS : SLOW_POLL_MS);
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const text = (name: string) => String(data.get(name) ?? "").trim();
    const num = (name: string) => (text(name) === "" ? undefined : Number(text(name)));
    const body: Record<string, unknown> = { generator: text("generator"), samples: num("samples") };
    for (const name of ["limit", "temperature", "max_new_tokens", "seed"]) {
      if (num(name) !== undefined) {
        body[name] = num(name);
      }
    }
    if (text("split")) {
      body.split = text("split");
    }
    const button = doc.getElementById("generate-button") as HTMLButtonElement;
    button.disabled = true;
    form.querySelectorAll(".field-error").forEach((n) => n.remove());
    errors.textContent = "";
    try {
      const answer = await send<SamplingRun>(doc, "POST", SAMPLING_API, body);
      const run = answer.body;
      shownLog = run.id;
      // The same request twice finds the first run: the API answers 200 with it, not 201.
      status.textContent = answer.status === 201
        ? `Run ${run.id} queued: ${requestText(run)}.`
        : `This request was made before: run ${run.id} (${run.state}); nothing new is sampled.`;
    } catch (err) {
      if (err instanceof ConsoleApiError && err.body && typeof err.body.detail !== "string") {
        const loose: string[] = [];
        for (const [field, msgs] of Object.entries(err.body)) {
          const msg = Array.isArray(msgs) ? msgs.join(" ") : String(msgs);
          const input = form.elements.namedItem(field);
          if (input instanceof HTMLElement) {
            const span = el(doc, "span", msg, "field-error");
            span.dataset.field = field;
            input.closest("label")?.append(span);
          } else {
            loose.push(`${field}: ${msg}`);
          }
        }
        errors.textContent = loose.join(" ");
      } else {
        errors.textContent = err instanceof Error ? err.message : String(err);
      }
    } finally {
      button.disabled = false;
    }
    await refresh();
  });

  void refresh();
}

export function startDataPage(doc: Document): void {
  startImports(doc);
  startGeneration(doc);
}
