// Pure helpers of the round dashboard (no DOM), kept apart so they read and test simply.
import type { LaunchBody, Round } from "./types";

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
