// The rules of one labeling pass, as pure functions over a plain JSON state (no DOM, no fetch),
// so the same state object is rendered, saved as the server draft and turned into the submit body.
//
// Phase 2 of PRM800K: steps are revealed one at a time; rating a step Bad (-1) ends the walk,
// the alternatives offered for that step are rated, and the task ends with `found_error`.
// Rating every step without a Bad ends with `solution`.

export type Rating = -1 | 0 | 1;
export type FinishReason = "found_error" | "solution" | "give_up" | "bad_problem";

export interface Alternative {
  position: number;
  text: string;
}

export interface AssignmentStep {
  position: number;
  text: string;
  alternatives: Alternative[];
}

export interface Assignment {
  id: number;
  lease_expires_at: string;
  problem: { text: string; reference_answer: string };
  steps: AssignmentStep[];
  draft: null | { state: unknown; active_ms: number; saved_at: string };
  /** Where the labeler is in their day and in the round (the same for every kind of task). */
  progress?: Progress;
}

export interface Progress {
  done_today: number;
  round: number;
  left_in_round: number;
  left_capped: boolean;
}

export interface Mark {
  rating: Rating | null;
  flagged: boolean;
}

export type Focus = { kind: "step"; index: number } | { kind: "alt"; index: number };

export interface WorkState {
  v: 1;
  /** Bumped on every change: the higher of the server and the local draft wins on restore. */
  rev: number;
  steps: Mark[];
  /** Alternative marks per step index; only the first Bad step's entry is submitted. */
  alts: Record<string, Mark[]>;
  focus: Focus;
}

export interface SubmitCompletion {
  position: number;
  rating: Rating | null;
  flagged: boolean;
}

export interface SubmitStep extends SubmitCompletion {
  alternatives: SubmitCompletion[];
}

export function initialState(a: Assignment): WorkState {
  return {
    v: 1,
    rev: 0,
    steps: a.steps.map(() => ({ rating: null, flagged: false })),
    alts: {},
    focus: { kind: "step", index: 0 },
  };
}

function isRating(x: unknown): x is Rating {
  return x === -1 || x === 0 || x === 1;
}

function cleanMark(x: unknown): Mark {
  const m = (x ?? {}) as { rating?: unknown; flagged?: unknown };
  return { rating: isRating(m.rating) ? m.rating : null, flagged: m.flagged === true };
}

/** Reads a saved draft back, or null if it does not fit this assignment (then start afresh). */
export function restoreState(a: Assignment, raw: unknown): WorkState | null {
  if (!raw || typeof raw !== "object") {
    return null;
  }
  const s = raw as Partial<WorkState>;
  if (s.v !== 1 || !Array.isArray(s.steps) || s.steps.length !== a.steps.length) {
    return null;
  }
  const alts: Record<string, Mark[]> = {};
  for (const [key, marks] of Object.entries(s.alts ?? {})) {
    const step = a.steps[Number(key)];
    if (step && Array.isArray(marks) && marks.length === step.alternatives.length) {
      alts[key] = marks.map(cleanMark);
    }
  }
  const state: WorkState = {
    v: 1,
    rev: typeof s.rev === "number" ? s.rev : 0,
    steps: s.steps.map(cleanMark),
    alts,
    focus: { kind: "step", index: 0 },
  };
  const f = s.focus as Focus | undefined;
  state.focus = f && isVisible(a, state, f) ? { kind: f.kind, index: f.index } : firstOpen(a, state);
  return state;
}

/** Index of the first unrated step (steps.length when all are rated). */
export function frontier(state: WorkState): number {
  const i = state.steps.findIndex((m) => m.rating === null);
  return i < 0 ? state.steps.length : i;
}

/** The last visible step: the first unrated one, or the first Bad one, whichever comes first. */
export function lastVisibleStep(state: WorkState): number {
  const n = state.steps.length;
  const bad = state.steps.findIndex((m) => m.rating === -1);
  const limit = bad >= 0 ? bad : n - 1;
  return Math.min(frontier(state), limit, n - 1);
}

/** The step rated Bad that ends the walk, or -1. */
export function errorStep(state: WorkState): number {
  const last = lastVisibleStep(state);
  return last >= 0 && state.steps[last]?.rating === -1 ? last : -1;
}

export function altMarks(a: Assignment, state: WorkState, stepIndex: number): Mark[] {
  const existing = state.alts[String(stepIndex)];
  if (existing) {
    return existing;
  }
  return (a.steps[stepIndex]?.alternatives ?? []).map(() => ({ rating: null, flagged: false }));
}

/** Visible items in reading order: steps 0..last, then the error step's alternatives. */
export function visibleItems(a: Assignment, state: WorkState): Focus[] {
  const items: Focus[] = [];
  if (a.steps.length === 0) {
    return items;
  }
  for (let i = 0; i <= lastVisibleStep(state); i++) {
    items.push({ kind: "step", index: i });
  }
  const err = errorStep(state);
  if (err >= 0) {
    a.steps[err].alternatives.forEach((_, j) => items.push({ kind: "alt", index: j }));
  }
  return items;
}

function sameFocus(x: Focus, y: Focus): boolean {
  return x.kind === y.kind && x.index === y.index;
}

function isVisible(a: Assignment, state: WorkState, f: Focus): boolean {
  return visibleItems(a, state).some((it) => sameFocus(it, f));
}

export function markAt(a: Assignment, state: WorkState, f: Focus): Mark | undefined {
  if (f.kind === "step") {
    return state.steps[f.index];
  }
  const err = errorStep(state);
  return err >= 0 ? altMarks(a, state, err)[f.index] : undefined;
}

/** The first visible item still unrated, or the last visible item when everything is rated. */
export function firstOpen(a: Assignment, state: WorkState): Focus {
  const items = visibleItems(a, state);
  const open = items.find((f) => markAt(a, state, f)?.rating === null);
  return open ?? items[items.length - 1] ?? { kind: "step", index: 0 };
}

/** How the task would end if submitted now, or null while it is unfinished. */
export function outcome(a: Assignment, state: WorkState): "found_error" | "solution" | null {
  const err = errorStep(state);
  if (err >= 0) {
    return altMarks(a, state, err).every((m) => m.rating !== null) ? "found_error" : null;
  }
  return a.steps.length > 0 && frontier(state) === a.steps.length ? "solution" : null;
}

function withMark(a: Assignment, state: WorkState, f: Focus, change: Partial<Mark>): WorkState {
  const next: WorkState = {
    ...state,
    rev: state.rev + 1,
    steps: state.steps.slice(),
    alts: { ...state.alts },
  };
  if (f.kind === "step") {
    next.steps[f.index] = { ...next.steps[f.index], ...change };
  } else {
    const err = errorStep(state);
    const marks = altMarks(a, state, err).slice();
    marks[f.index] = { ...marks[f.index], ...change };
    next.alts[String(err)] = marks;
  }
  return next;
}

/** Rates the focused item and moves on to the next unrated one. */
export function rate(a: Assignment, state: WorkState, rating: Rating): WorkState {
  if (!isVisible(a, state, state.focus)) {
    return state;
  }
  const next = withMark(a, state, state.focus, { rating });
  next.focus = firstOpen(a, next);
  return next;
}

export function toggleFlag(a: Assignment, state: WorkState): WorkState {
  const mark = markAt(a, state, state.focus);
  if (!mark || !isVisible(a, state, state.focus)) {
    return state;
  }
  return withMark(a, state, state.focus, { flagged: !mark.flagged });
}

/** Moves the focus by `delta` visible items (clamped). */
export function move(a: Assignment, state: WorkState, delta: number): WorkState {
  const items = visibleItems(a, state);
  const at = items.findIndex((f) => sameFocus(f, state.focus));
  const to = Math.max(0, Math.min(items.length - 1, (at < 0 ? 0 : at) + delta));
  const focus = items[to];
  if (!focus || sameFocus(focus, state.focus)) {
    return state;
  }
  return { ...state, rev: state.rev + 1, focus };
}

export function focusOn(a: Assignment, state: WorkState, focus: Focus): WorkState {
  if (!isVisible(a, state, focus) || sameFocus(focus, state.focus)) {
    return state;
  }
  return { ...state, rev: state.rev + 1, focus };
}

function completion(position: number, m: Mark): SubmitCompletion {
  return { position, rating: m.rating, flagged: m.flagged };
}

/** The `steps` of a submit body for `reason` (see the API contract). */
export function submitSteps(a: Assignment, state: WorkState, reason: FinishReason): SubmitStep[] {
  const out: SubmitStep[] = [];
  const err = errorStep(state);
  const last = lastVisibleStep(state);
  for (let i = 0; i <= last; i++) {
    const m = state.steps[i];
    if (m.rating === null) {
      break;
    }
    const alternatives =
      reason === "found_error" && i === err
        ? altMarks(a, state, err).map((am, j) => completion(a.steps[i].alternatives[j].position, am))
        : [];
    out.push({ ...completion(a.steps[i].position, m), alternatives });
  }
  return out;
}
