// Finished labelings wait in a localStorage outbox until the server has them: a reload, a crash
// or a dropped connection loses nothing. Submit is idempotent on the server, so an entry sent
// twice is harmless. The last entry sent also asks for the next task (claim_next), which comes
// back in the same answer: one round trip between tasks.
import * as api from "../api";
import { ApiError, NetworkError } from "../api";
import type { Assignment } from "../labeling";
import type { LocalStore } from "./store";

const MAX_RETRY_MS = 30_000;

export interface OutboxEntry {
  assignmentId: number;
  url: string;
  body: api.SubmitBody;
}

export interface OutboxReport {
  sent(result: api.SubmitResult): void;
  offline(): void;
  /** Refused for good; `taskKept`: a 400, so the task stays open to be fixed. */
  refused(message: string, taskKept: boolean): void;
}

/** The next task handed back with the last submit: an assignment, null for "no work", or
 * undefined when the page must claim by itself. */
export type NextTask = Assignment | null | undefined;

const sleep = (ms: number) => new Promise((resolve) => window.setTimeout(resolve, ms));

export class Outbox {
  /** `claimNext` false: the submit alone, then a claim of its own (two round trips, the path
   * before claim_next; kept reachable as /label/?claim_next=0 for benchmarks/bench_workspace.py). */
  constructor(
    private readonly store: LocalStore,
    private readonly claimNext = true,
  ) {}

  push(entry: OutboxEntry): void {
    const entries = this.store.get<OutboxEntry[]>("outbox") ?? [];
    entries.push(entry);
    this.store.set("outbox", entries);
  }

  /** Assignments whose labelings still wait here (their local drafts are kept until sent). */
  pendingIds(): number[] {
    return (this.store.get<OutboxEntry[]>("outbox") ?? []).map((e) => e.assignmentId);
  }

  /** Sends queued labelings in order, retrying network failures until each gets an answer.
   * `askForNext` false: the page already has its next task (prefetched). */
  async flush(report: OutboxReport, askForNext = true): Promise<NextTask> {
    let next: NextTask = undefined;
    for (let guard = 0; guard < 100; guard++) {
      const entries = this.store.get<OutboxEntry[]>("outbox") ?? [];
      const entry = entries[0];
      if (!entry) {
        return next;
      }
      const body = { ...entry.body, claim_next: askForNext && this.claimNext && entries.length === 1 };
      let delay = 1_000;
      let keepDraft = false;
      next = undefined;
      for (;;) {
        try {
          const result = await api.finish(entry.url, body);
          report.sent(result);
          if (body.claim_next && result.next !== undefined) {
            next = result.next === null ? null : result.next.assignment;
          }
          break;
        } catch (err) {
          if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
            report.offline();
            await sleep(delay);
            delay = Math.min(delay * 2, MAX_RETRY_MS);
            continue;
          }
          // Refused for good. A 400 leaves the task open: keep its draft so it comes back with
          // its ratings to be fixed. Otherwise (lease lost, forbidden) the work cannot be kept.
          keepDraft = err instanceof ApiError && err.status === 400;
          report.refused((err as Error).message, keepDraft);
          break;
        }
      }
      this.store.set("outbox", (this.store.get<OutboxEntry[]>("outbox") ?? []).slice(1));
      if (!keepDraft) {
        this.store.remove(`draft:${entry.assignmentId}`);
      }
    }
    return next;
  }
}
