// A small client for the labeling API: session auth with Django's CSRF cookie, JSON in and out,
// and errors split into the three cases the workspace treats differently.
import type { Assignment, FinishReason, SubmitStep } from "./labeling";

/** The server answered with an error status (4xx/5xx). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown> | null,
  ) {
    super(ApiError.describe(status, body));
  }

  /** A stale, expired or reassigned lease, or a cancelled task. */
  get leaseLost(): boolean {
    return this.status === 409 && !this.draftConflict;
  }

  /** Another tab or window saved a newer draft of this task. */
  get draftConflict(): boolean {
    return this.status === 409 && this.body?.code === "draft_conflict";
  }

  static describe(status: number, body: Record<string, unknown> | null): string {
    if (body && typeof body.detail === "string") {
      return body.detail;
    }
    if (body) {
      const parts = Object.entries(body).map(([field, msgs]) =>
        Array.isArray(msgs) ? `${field}: ${msgs.join(" ")}` : `${field}: ${String(msgs)}`,
      );
      if (parts.length) {
        return parts.join("; ");
      }
    }
    return `The server answered ${status}.`;
  }
}

/** The request never got an answer (offline, server down, connection reset). */
export class NetworkError extends Error {}

function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** One JSON call with the session's CSRF token; null for an empty answer. */
export async function request<T>(
  method: string,
  url: string,
  body?: unknown,
): Promise<T | null> {
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...(method === "GET" ? {} : { "X-CSRFToken": csrfToken() }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new NetworkError(err instanceof Error ? err.message : String(err));
  }
  if (response.status === 204) {
    return null;
  }
  let parsed: unknown = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const errBody = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : null;
    throw new ApiError(response.status, errBody);
  }
  return parsed as T;
}

const BASE = "/api/labeling";

export interface SubmitBody {
  finish_reason?: FinishReason;
  reason: string;
  total_time_ms: number;
  steps: SubmitStep[];
  /** Claim the next task in the same request (its answer's `next`). */
  claim_next?: boolean;
}

export interface SubmitResult {
  labeling_id: number;
  finish_reason: FinishReason;
  next?: { assignment: Assignment } | null;
}

export interface HistoryCompletion {
  text: string;
  rating: -1 | 0 | 1 | null;
  flagged: boolean;
}

export interface HistoryItem {
  id: number;
  finished_at: string;
  finish_reason: FinishReason;
  reason: string;
  total_time_ms: number | null;
  problem: string;
  reference_answer: string;
  steps: (HistoryCompletion & { position: number; gold: -1 | 0 | 1 | null; alternatives: HistoryCompletion[] })[];
  quality_control: boolean;
  gold_agreement: number | null;
}

export interface MeSummary {
  username: string;
  screening_status: "pending" | "passed" | "failed";
  tasks_today: number;
  mean_time_ms_today: number | null;
  recent: { finished_at: string; total_time_ms: number | null; finish_reason: string }[];
  history: HistoryItem[];
}

export async function claim(): Promise<Assignment | null> {
  const res = await request<{ assignment: Assignment }>("POST", `${BASE}/claim/`);
  return res ? res.assignment : null;
}

/** Leases the task after `id` while `id` is worked on (null: nothing to prefetch). */
export async function prefetch(id: number): Promise<Assignment | null> {
  const res = await request<{ assignment: Assignment }>("POST", `${BASE}/assignments/${id}/prefetch/`);
  return res ? res.assignment : null;
}

export async function heartbeat(id: number): Promise<{ lease_expires_at: string }> {
  return (await request("POST", `${BASE}/assignments/${id}/heartbeat/`)) as {
    lease_expires_at: string;
  };
}

export async function saveDraft(
  id: number,
  state: unknown,
  activeMs: number,
): Promise<{ saved_at: string; lease_expires_at: string }> {
  return (await request("PUT", `${BASE}/assignments/${id}/draft/`, {
    state,
    active_ms: Math.round(activeMs),
  })) as { saved_at: string; lease_expires_at: string };
}

/** Where each finish reason is sent: give up and bad problem have their own endpoints. */
export function finishUrl(id: number, reason: FinishReason): string {
  if (reason === "give_up") {
    return `${BASE}/assignments/${id}/give-up/`;
  }
  if (reason === "bad_problem") {
    return `${BASE}/assignments/${id}/report-bad-problem/`;
  }
  return `${BASE}/assignments/${id}/submit/`;
}

export async function finish(url: string, body: SubmitBody): Promise<SubmitResult> {
  return (await request<SubmitResult>("POST", url, body)) as SubmitResult;
}

export async function me(): Promise<MeSummary> {
  return (await request<MeSummary>("GET", `${BASE}/me/`)) as MeSummary;
}
