// Pure helpers of the round dashboard (no DOM), kept apart so they read and test simply.
import { describe, type FieldErrors } from "./api";
import type { ImportLineError, ImportResult, LaunchBody, Round } from "./types";

export function percent(share: number | null | undefined): string {
  return share === null || share === undefined ? "–" : `${Math.round(share * 100)}%`;
}

export function paramsSummary(params: Record<string, unknown>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(", ");
}

/** Which actions a round in this state offers. */
export function actionsFor(state: string): Array<"pause" | "resume" | "cancel"> {
  switch (state) {
    case "active":
      return ["pause", "cancel"];
    case "paused":
      return ["resume", "cancel"];
    case "launching":
      return ["cancel"];
    default:
      return [];
  }
}

/** Rounds still moving: the dashboard polls faster while any is launching. */
export function anyLaunching(rounds: Round[]): boolean {
  return rounds.some((r) => r.state === "launching");
}

export function progressText(round: Round): string {
  const p = round.progress ?? {};
  if (round.state === "failed") {
    return `failed: ${(p.error ?? "").split("\n").filter(Boolean).pop() ?? ""}`;
  }
  // While launching the stage matters (training, scoring, selecting); afterwards the summary.
  return round.state === "launching" ? [p.stage, p.message].filter(Boolean).join(": ") : (p.message ?? "");
}

/** The round's "queued · leased · done / tasks" cell, with what the state changes about it.
 * Imported generations have no tasks: they say so instead of showing progress. A paused round
 * still has its paused tasks to serve (on resume): they count as queued. */
export function roundCountsText(round: Round): string {
  const c = round.counts;
  if (!c) {
    return "–";
  }
  if (c.is_import) {
    return `imported: ${c.imported} labeling${c.imported === 1 ? "" : "s"}, no tasks`;
  }
  const paused = round.state === "paused";
  const queued = paused ? c.queued + c.paused : c.queued;
  const notes: string[] = [];
  if (paused && queued) {
    notes.push("queued tasks wait for resume");
  } else if (!paused && c.paused) {
    notes.push(`${c.paused} paused`);
  }
  if (c.cancelled) {
    notes.push(`${c.cancelled} withdrawn`);
  }
  if (round.state === "cancelled" && c.queued) {
    notes.push(`${c.queued} queued will not be served`);
  }
  if (c.leases > c.leased) {
    notes.push(`${c.leases} leases`);
  }
  if (c.qc_items) {
    notes.push(`+${c.qc_items} QC item${c.qc_items === 1 ? "" : "s"}`);
  }
  const main = `${queued} · ${c.leased} · ${c.done} / ${c.tasks}`;
  return notes.length ? `${main} (${notes.join("; ")})` : main;
}

/** The share of a round's tasks that are done, or null where a bar would mislead (imports,
 * rounds without tasks, launching rounds use their pipeline's fraction instead). */
export function roundDoneShare(round: Round): number | null {
  const c = round.counts;
  if (round.state === "launching") {
    return round.progress?.fraction ?? 0;
  }
  if (!c || c.is_import || c.tasks === 0) {
    return null;
  }
  return c.done / c.tasks;
}

/** The launch form's fields as the API's body; only the chosen strategy's parameters go. */
export function launchBody(fields: Record<string, string>, retrain: boolean): LaunchBody {
  const num = (name: string): number | undefined =>
    fields[name] === undefined || fields[name].trim() === "" ? undefined : Number(fields[name]);
  const strategy = fields.strategy;
  const params: Record<string, number | string> = {};
  const cap = num("per_problem_cap");
  if (cap !== undefined) {
    params.per_problem_cap = cap;
  }
  if (strategy === "convincing_wrong_answer") {
    const share = num("wrong_share");
    if (share !== undefined) {
      params.wrong_share = share;
    }
    if (fields.scope === "per_problem") {
      params.scope = "per_problem";
      params.per_problem = num("per_problem") ?? 1;
    }
  } else if (strategy === "uniform") {
    const seed = num("seed");
    if (seed !== undefined) {
      params.seed = seed;
    }
  }
  return {
    prm_version: num("prm_version") ?? null,
    strategy,
    strategy_params: params,
    size: num("size") ?? 0,
    labelings_per_task: num("labelings_per_task") ?? 1,
    qc_rate: num("qc_rate") ?? 0,
    retrain,
  };
}

function counts(parts: Record<string, number>): string {
  return Object.entries(parts)
    .filter(([, n]) => n)
    .map(([what, n]) => `${n} ${what}`)
    .join(", ");
}

/** One line for a finished import: what was read, created, and already there. */
export function importResultText(result: ImportResult): string {
  const made = counts(result.created) || "nothing new";
  const had = counts(result.skipped);
  return `Imported ${result.lines} lines: created ${made}${had ? `; already here: ${had}` : ""}.`;
}

/** A refused import: the line and field the server named, or its message. */
export function importErrorText(status: number, body: unknown): string {
  const b = (body ?? {}) as Partial<ImportLineError> & Record<string, unknown>;
  if (typeof b.line === "number") {
    const where = b.field ? `line ${b.line}, field ${b.field}` : `line ${b.line}`;
    return `Nothing was imported: ${where}: ${b.detail ?? "invalid"}`;
  }
  return `Nothing was imported: ${describe(status, (body ?? null) as FieldErrors | null)}`;
}

/** The last non-empty log line without its timestamp: what a run is doing now. */
export function latestLogLine(log: string): string {
  const last = log.split("\n").filter((l) => l.trim()).pop() ?? "";
  return last.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /, "");
}

/** Runs still moving: their page polls faster. */
export function anyUnfinished(runs: Array<{ state: string }>): boolean {
  return runs.some((r) => r.state === "queued" || r.state === "running");
}

/** The train form's fields as the training API's body: blanks are left to the defaults. */
export function trainBody(fields: Record<string, string>, activate: boolean, numeric: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: (fields.name ?? "").trim(),
    base_model: fields.base_model ?? "",
    kind: fields.kind || "prm",
    activate,
  };
  for (const name of numeric) {
    const raw = (fields[name] ?? "").trim();
    if (raw !== "") {
      body[name] = Number(raw);
    }
  }
  return body;
}

/** A sampling run's counts in words: what was kept (and how it graded) and what was not. */
export function samplingCountsText(counts: Record<string, number> | null | undefined): string {
  const c = counts ?? {};
  if (!c.requested) {
    return "–"; // nothing drawn yet
  }
  const n = (key: string) => c[key] ?? 0;
  const graded = [
    n("correct") && `${n("correct")} correct`,
    n("wrong") && `${n("wrong")} wrong`,
    n("ungraded") && `${n("ungraded")} ungraded`,
  ].filter(Boolean);
  const dropped = [
    n("no_answer") &&
      `${n("no_answer")} without an answer${n("truncated") ? ` (${n("truncated")} cut at the token limit)` : ""}`,
    n("empty") && `${n("empty")} without steps`,
    n("duplicates") && `${n("duplicates")} duplicates`,
    n("already_sampled") && `${n("already_sampled")} sampled before`,
  ].filter(Boolean);
  const kept = `kept ${n("kept")} of ${n("requested")}${graded.length ? ` (${graded.join(", ")})` : ""}`;
  return dropped.length ? `${kept}; left out: ${dropped.join(", ")}` : kept;
}
