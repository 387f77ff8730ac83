// The labeler's workspace at /label/: claim a task, rate its steps by keyboard, save drafts as
// the labeler works, submit, and go straight on to the next task.
//
// The parts: view.ts (the DOM), keys.ts (which key does what), store.ts (localStorage),
// outbox.ts (finished labelings until the server has them), tabs.ts (two tabs on one task),
// guidelines.ts (the help behind "?"). This file holds the state and talks to the server.
//
// Where work is kept, so that a reload or a crash loses nothing:
// - every change is written to localStorage at once (`draft:<assignment>`), and sent to the
//   server as the assignment's draft: immediately after a rating or undo, debounced otherwise;
// - a finished labeling goes to the outbox before it is sent (see outbox.ts).
// Between tasks: while the labeler works, the page leases the next task ahead (`prefetch/`: a
// real lease, marked prefetched, renewed with every heartbeat). Pressing `s` shows it at once
// (its rows built in one go, KaTeX included) while the submit goes out in the background; the
// server makes it the open lease when the submit lands. Without a prefetched task (none yet,
// or none left), the submit carries `claim_next` and its answer brings the next task: one
// round trip. docs/workspace.md, "Between tasks".
import * as api from "../api";
import { ApiError, NetworkError } from "../api";
import { ActiveTimer } from "../activity";
import { el } from "../dom";
import {
  type Assignment,
  type FinishReason,
  type Rating,
  type WorkState,
  altMarks,
  errorStep,
  focusOn,
  initialState,
  markAt,
  move,
  outcome,
  rate,
  restoreState,
  submitSteps,
  toggleFlag,
  visibleItems,
} from "../labeling";
import { keyAction } from "./keys";
import { type NextTask, Outbox } from "./outbox";
import { LocalStore } from "./store";
import { TabWatch } from "./tabs";
import { WorkspaceView } from "./view";

const HEARTBEAT_MS = 60_000;
const DRAFT_DEBOUNCE_MS = 1_500;
const MAX_RETRY_MS = 30_000;
const EMPTY_POLL_MS = 30_000;
const UNDO_LIMIT = 200;

const REASON_WORDS: Record<FinishReason, string> = {
  found_error: "found an error",
  solution: "every step rated",
  give_up: "gave up",
  bad_problem: "reported a bad problem",
};

interface LocalDraft {
  state: WorkState;
  active_ms: number;
}

const sleep = (ms: number) => new Promise((resolve) => window.setTimeout(resolve, ms));

export class Workspace {
  private assignment: Assignment | null = null;
  private state: WorkState | null = null;
  private undoStack: WorkState[] = [];
  private readonly timer = new ActiveTimer();
  private readonly store: LocalStore;
  private readonly outbox: Outbox;
  private readonly tabs: TabWatch;
  private readonly view: WorkspaceView;
  private heartbeatTimer: number | undefined;
  private clockTimer: number | undefined;
  private draftTimer: number | undefined;
  private draftInFlight = false;
  private draftPending = false;
  private draftRetryMs = 2_000;
  private savedActiveMs = 0;
  private busy = false;
  /** Another tab saved a newer draft of this task: this tab stops writing until reloaded. */
  private conflicted = false;
  private emptyPoll: number | undefined;
  private dialogReason: FinishReason | null = null;
  /** The next task, leased ahead for the task now open (`prefetchedFor`). */
  private prefetched: Assignment | null = null;
  private prefetchedFor: number | null = null;
  private readonly prefetchOn: boolean;
  private flushing: Promise<NextTask> | null = null;

  constructor(root: HTMLElement, username: string) {
    this.store = new LocalStore(`stepwise:${username}:`);
    // ?claim_next=0 and ?prefetch=0 take the older paths (benchmarks/bench_workspace.py).
    const params = new URLSearchParams(window.location.search);
    this.outbox = new Outbox(this.store, params.get("claim_next") !== "0");
    this.prefetchOn = params.get("prefetch") !== "0";
    this.tabs = new TabWatch(`stepwise:${username}`, () => this.sameTaskElsewhere());
    this.view = new WorkspaceView(root, {
      rate: (focus, rating) => this.apply((a, s) => rate(a, focusOn(a, s, focus), rating), true),
      flag: (focus) => this.apply((a, s) => toggleFlag(a, focusOn(a, s, focus)), true),
      focus: (focus) => this.apply((a, s) => focusOn(a, s, focus), false),
      submit: () => void this.submit(),
      undo: () => this.undo(),
      openReason: (reason) => this.openReason(reason),
      sendReason: () => void this.sendReason(),
      checkAgain: () => void this.loadNext(),
    });
    document.addEventListener("keydown", (event) => this.onKey(event));
    // Leaving or hiding the page: keep the latest active time with the local draft.
    const keepLocal = () => {
      if (this.assignment && this.state && !this.conflicted) {
        this.store.set(`draft:${this.assignment.id}`, { state: this.state, active_ms: this.timer.ms });
      }
    };
    window.addEventListener("pagehide", keepLocal);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") {
        keepLocal();
      }
    });
  }

  // ---- loading work -------------------------------------------------------------------------

  async start(): Promise<void> {
    await this.loadNext();
  }

  /** Sends any finished labelings still waiting, then shows the next task (claiming it unless
   * the last submit brought it). */
  private async loadNext(): Promise<void> {
    window.clearTimeout(this.emptyPoll);
    this.setStatus("Loading…");
    this.prefetched = null;
    const next: NextTask = await this.sendOutbox(true);
    performance.mark("stepwise:sent");
    if (next !== undefined) {
      performance.mark("stepwise:claimed");
      if (next === null) {
        this.showEmpty(null);
      } else {
        this.show(next);
      }
      return;
    }
    let assignment: Assignment | null = null;
    for (let delay = 1_000; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      try {
        assignment = await api.claim();
        performance.mark("stepwise:claimed");
        break;
      } catch (err) {
        // A 409 on claim means it raced other labelers for the same work: simply ask again.
        if (err instanceof ApiError && err.leaseLost) {
          await sleep(Math.min(delay, 2_000) * Math.random());
          continue;
        }
        if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
          this.setStatus("Cannot reach the server; retrying…", "offline");
          await sleep(delay);
          continue;
        }
        this.showEmpty(err instanceof Error ? err.message : String(err));
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          this.view.showNotice(
            "If your session ended, sign in again: ",
            el("a", { href: `/accounts/login/?next=/label/`, text: "sign in" }),
          );
        }
        return;
      }
    }
    if (!assignment) {
      this.showEmpty(null);
      return;
    }
    this.show(assignment);
  }

  /** Sends the outbox (one flush at a time); `askForNext`: the answer may bring the next task. */
  private sendOutbox(askForNext: boolean, onTaskKept?: () => void): Promise<NextTask> {
    const run = async (): Promise<NextTask> => {
      if (this.flushing) {
        await this.flushing; // an earlier flush still running: let it finish first
      }
      return this.outbox.flush(
        {
          sent: (result) => {
            const words = REASON_WORDS[result.finish_reason] ?? result.finish_reason;
            if (!this.assignment) {
              this.setStatus(`Submitted (${words})`, "saved");
            }
            this.view.confirm(`Submitted: ${words}. Thank you!`);
          },
          offline: () => {
            const text = "Offline: your labeling is kept on this device and will be sent…";
            if (this.assignment) {
              this.view.confirm(text); // the next task is already on screen
            } else {
              this.setStatus(text, "offline");
            }
          },
          refused: (message, taskKept) => {
            this.view.showNotice(`Your labeling was not accepted: ${message}`);
            if (taskKept) {
              onTaskKept?.();
            }
          },
        },
        askForNext,
      );
    };
    const flushing = run();
    this.flushing = flushing;
    void flushing.finally(() => {
      if (this.flushing === flushing) {
        this.flushing = null;
      }
    });
    return flushing;
  }

  /** Leases the next task while this one is worked on (asked again: the lease is renewed). */
  private async prefetchNext(): Promise<void> {
    const a = this.assignment;
    if (!a || !this.prefetchOn) {
      return;
    }
    try {
      const next = await api.prefetch(a.id);
      if (this.assignment === a) {
        this.prefetched = next;
        this.prefetchedFor = a.id;
      }
    } catch {
      // Not fatal: without a prefetched task the submit brings the next one (claim_next).
    } finally {
      // Read by benchmarks/bench_workspace.py (a labeler takes longer than this to rate).
      performance.mark("stepwise:prefetched");
    }
  }

  private showEmpty(detail: string | null): void {
    this.assignment = null;
    this.state = null;
    this.tabs.showing(null);
    this.view.showEmpty(detail);
    if (this.view.statusLine.dataset.kind !== "saved") {
      this.setStatus(""); // keep "Submitted (...)" visible; drop "Loading…"
    }
    this.emptyPoll = window.setTimeout(() => void this.loadNext(), EMPTY_POLL_MS);
  }

  /** Shows a task; `prefetchNow` false: its own prefetch waits (see finishTask). */
  private show(a: Assignment, prefetchNow = true): void {
    this.assignment = a;
    this.undoStack = [];
    this.conflicted = false;
    // A prefetch belongs to the task it was made for; this task asks for its own (the server
    // hands back the same lease if one is held).
    this.prefetched = null;
    this.prefetchedFor = null;
    this.store.pruneDrafts(a.id, ...this.outbox.pendingIds());
    // The newer of the server draft and this browser's copy wins (higher rev).
    const local = this.store.get<LocalDraft>(`draft:${a.id}`);
    const fromServer = a.draft ? restoreState(a, a.draft.state) : null;
    const fromLocal = local ? restoreState(a, local.state) : null;
    let state = initialState(a);
    if (fromServer && (!fromLocal || fromServer.rev >= fromLocal.rev)) {
      state = fromServer;
    } else if (fromLocal) {
      state = fromLocal;
    }
    this.state = state;
    const activeMs = Math.max(a.draft?.active_ms ?? 0, local?.active_ms ?? 0);
    this.timer.start(activeMs);
    this.savedActiveMs = a.draft?.active_ms ?? 0;

    this.view.showTask(a);
    this.view.setQueue(a.progress);
    this.view.setTimer(activeMs);
    this.busy = false;
    this.update();
    this.setStatus(a.draft || fromLocal ? "Draft restored" : "New task");
    if (fromLocal && (!fromServer || fromLocal.rev > fromServer.rev)) {
      void this.saveDraft();
    }
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = window.setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    window.clearInterval(this.clockTimer);
    this.clockTimer = window.setInterval(() => this.view.setTimer(this.timer.ms), 1_000);
    this.tabs.showing(a.id);
    window.scrollTo({ top: 0 });
    // Read by benchmarks/bench_workspace.py: the time from finishing one task to the next shown.
    performance.mark("stepwise:shown");
    if (prefetchNow) {
      void this.prefetchNext();
    }
  }

  private stopTask(): void {
    window.clearInterval(this.heartbeatTimer);
    window.clearInterval(this.clockTimer);
    window.clearTimeout(this.draftTimer);
    this.heartbeatTimer = undefined;
    this.clockTimer = undefined;
    this.draftTimer = undefined;
    this.draftPending = false;
    this.timer.stop();
  }

  // ---- rendering ----------------------------------------------------------------------------

  /** Brings the rows, progress line and submit button in line with the state. */
  private update(): void {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s) {
      return;
    }
    const items = visibleItems(a, s);
    const err = errorStep(s);
    this.view.hideAllRows(err);
    let focusedRow: HTMLLIElement | undefined;
    for (const item of items) {
      const mark = markAt(a, s, item);
      const li = this.view.rowFor(item.kind, item.index, err);
      if (!li || !mark) {
        continue;
      }
      const focused = item.kind === s.focus.kind && item.index === s.focus.index;
      this.view.paintRow(li, mark.rating, mark.flagged, focused);
      if (focused) {
        focusedRow = li;
      }
    }
    const done = outcome(a, s);
    this.view.submitButton.disabled = done === null || this.busy || this.conflicted;
    let line: string;
    if (done === "found_error") {
      line = `Finished: step ${err + 1} is Bad. Press s to submit, or change a rating first.`;
    } else if (done === "solution") {
      line = "Finished: every step rated, no Bad step. Press s to submit.";
    } else if (err >= 0) {
      const left = altMarks(a, s, err).filter((m) => m.rating === null).length;
      line = `Step ${err + 1} is Bad: rate the ${left} remaining alternative${left === 1 ? "" : "s"}.`;
    } else {
      line = `Step ${items.length} of ${a.steps.length}.`;
    }
    this.view.progress.textContent = line;
    this.view.root.dataset.outcome = done ?? "";
    if (focusedRow) {
      this.view.reveal(focusedRow);
    }
  }

  // ---- changing the state -------------------------------------------------------------------

  /** Applies a state change, remembers it for undo, and saves the draft (now if `urgent`). */
  private apply(change: (a: Assignment, s: WorkState) => WorkState, urgent: boolean): void {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s || this.busy || this.conflicted) {
      return;
    }
    const next = change(a, s);
    if (next === s) {
      return;
    }
    const ratingsChanged = next.steps !== s.steps || next.alts !== s.alts;
    if (ratingsChanged) {
      this.undoStack.push(s);
      if (this.undoStack.length > UNDO_LIMIT) {
        this.undoStack.shift();
      }
    }
    this.commit(next, urgent && ratingsChanged);
  }

  private commit(next: WorkState, urgent: boolean): void {
    this.state = next;
    this.update();
    this.store.set(`draft:${this.assignment?.id}`, { state: next, active_ms: this.timer.ms });
    // The rating that finishes a task is usually followed by a submit within a second: its
    // server save waits out the debounce (and is dropped by the submit), so the submit does not
    // queue behind it on the assignment's row lock. This browser's copy is already written.
    const finishing = this.assignment !== null && outcome(this.assignment, next) !== null;
    if (urgent && !finishing) {
      void this.saveDraft();
    } else {
      window.clearTimeout(this.draftTimer);
      this.draftTimer = window.setTimeout(() => void this.saveDraft(), DRAFT_DEBOUNCE_MS);
    }
  }

  private undo(): void {
    const previous = this.undoStack.pop();
    if (!previous || !this.state || this.busy || this.conflicted) {
      return;
    }
    // A fresh rev, so the undone state also wins over older drafts on restore.
    this.commit({ ...previous, rev: this.state.rev + 1 }, true);
  }

  // ---- server draft and lease ---------------------------------------------------------------

  private async saveDraft(): Promise<void> {
    const a = this.assignment;
    if (!a || !this.state || this.conflicted) {
      return;
    }
    window.clearTimeout(this.draftTimer);
    if (this.draftInFlight) {
      this.draftPending = true;
      return;
    }
    this.draftInFlight = true;
    const sentRev = this.state.rev;
    const sentMs = this.timer.ms;
    this.setStatus("Saving…", "saving");
    try {
      // `tab` lets the server tell this tab's saves from another tab's (services.py).
      await api.saveDraft(a.id, { ...this.state, tab: this.tabs.id }, sentMs);
      this.savedActiveMs = sentMs;
      this.draftRetryMs = 2_000;
      // "Saved" only once the latest change is on the server, not while a newer one waits.
      if (this.assignment === a && !(this.draftPending && this.state?.rev !== sentRev)) {
        this.setStatus(`Saved ${new Date().toLocaleTimeString()}`, "saved");
      }
    } catch (err) {
      if (this.assignment !== a) {
        return;
      }
      if (err instanceof ApiError && err.draftConflict) {
        this.draftInFlight = false;
        this.changedElsewhere();
        return;
      }
      if (err instanceof ApiError && err.leaseLost) {
        this.draftInFlight = false;
        void this.leaseLost(err);
        return;
      }
      if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
        this.setStatus("Offline: saved on this device, retrying…", "offline");
        window.clearTimeout(this.draftTimer);
        this.draftTimer = window.setTimeout(() => void this.saveDraft(), this.draftRetryMs);
        this.draftRetryMs = Math.min(this.draftRetryMs * 2, MAX_RETRY_MS);
      } else {
        this.setStatus(`Draft not saved: ${(err as Error).message}`, "error");
      }
    } finally {
      this.draftInFlight = false;
    }
    if (this.draftPending && this.assignment === a) {
      this.draftPending = false;
      if (this.state && this.state.rev !== sentRev) {
        void this.saveDraft();
      }
    }
  }

  private async heartbeat(): Promise<void> {
    const a = this.assignment;
    if (!a || this.busy) {
      return;
    }
    // The prefetched lease is renewed along with this one (or taken now, if none was free).
    void this.prefetchNext();
    if (this.timer.ms > this.savedActiveMs + 1_000 && !this.conflicted) {
      // A draft save also extends the lease, and keeps the server's active time current.
      await this.saveDraft();
      return;
    }
    try {
      await api.heartbeat(a.id);
    } catch (err) {
      if (this.assignment !== a) {
        return;
      }
      if (err instanceof ApiError && err.leaseLost) {
        void this.leaseLost(err);
      } else if (err instanceof NetworkError) {
        this.setStatus("Offline: saved on this device, retrying…", "offline");
      }
    }
  }

  /** The task was taken back (lease expired, reassigned or cancelled): say so and move on. */
  private async leaseLost(err: ApiError): Promise<void> {
    const a = this.assignment;
    if (!a || this.busy) {
      return;
    }
    this.stopTask();
    this.store.remove(`draft:${a.id}`);
    this.assignment = null;
    this.state = null;
    this.view.showNotice(
      `This task is no longer yours (${err.message}). Your ratings on it could not be kept; here is new work.`,
    );
    await this.loadNext();
  }

  // ---- two tabs -----------------------------------------------------------------------------

  private reloadButton(): HTMLButtonElement {
    const reload = el("button", { type: "button", class: "secondary", id: "reload-task", text: "Reload" });
    reload.addEventListener("click", () => window.location.reload());
    return reload;
  }

  /** Another tab of this browser shows the same task. */
  private sameTaskElsewhere(): void {
    if (this.conflicted) {
      return;
    }
    this.view.showNotice(
      "This task is also open in another tab or window. Rate it in one place only: the other tab's ratings and these would overwrite each other. ",
    );
    this.view.notice.dataset.kind = "two-tabs";
  }

  /** The server holds a newer draft from another tab: stop writing, offer a reload. */
  private changedElsewhere(): void {
    this.conflicted = true;
    window.clearTimeout(this.draftTimer);
    this.setStatus("Not saved: changed in another tab", "error");
    this.view.showNotice(
      "This task was changed in another tab or window, so this tab stopped saving to keep those ratings. Reload to continue with the latest ratings. ",
      this.reloadButton(),
    );
    this.view.notice.dataset.kind = "conflict";
    this.update();
  }

  // ---- finishing ----------------------------------------------------------------------------

  private openReason(reason: "give_up" | "bad_problem"): void {
    if (!this.assignment || this.busy || this.conflicted) {
      return;
    }
    this.dialogReason = reason;
    this.view.openReasonDialog(reason);
  }

  private async sendReason(): Promise<void> {
    const reason = this.dialogReason;
    const text = this.view.reasonText.value.trim();
    if (!reason) {
      return;
    }
    if (!text) {
      this.view.reasonError.textContent = "Please give a reason.";
      this.view.reasonText.focus();
      return;
    }
    this.view.reasonDialog.close();
    await this.finishTask(reason, text);
  }

  private async submit(): Promise<void> {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s || this.busy || this.conflicted) {
      return;
    }
    const done = outcome(a, s);
    if (!done) {
      this.view.showNotice("Not finished yet: rate every shown step (and the alternatives after a Bad step).");
      return;
    }
    await this.finishTask(done, "");
  }

  /** Queues the labeling in the outbox, sends it, and shows the next task. */
  private async finishTask(reason: FinishReason, text: string): Promise<void> {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s || this.busy) {
      return;
    }
    this.busy = true;
    performance.mark("stepwise:finish");
    const steps = submitSteps(a, s, reason);
    const body: api.SubmitBody =
      reason === "give_up" || reason === "bad_problem"
        ? { reason: text, total_time_ms: this.timer.ms, steps }
        : { finish_reason: reason, reason: text, total_time_ms: this.timer.ms, steps };
    this.outbox.push({ assignmentId: a.id, url: api.finishUrl(a.id, reason), body });
    this.stopTask();
    // From here on the task is the outbox's: a late draft or heartbeat answer (409 once the
    // submit has landed) must not be mistaken for a lost lease.
    this.assignment = null;
    this.state = null;
    this.tabs.showing(null);
    this.view.submitButton.disabled = true;
    this.view.root.dataset.outcome = "";
    this.view.taskView.classList.add("leaving");
    this.setStatus("Submitting…", "saving");
    this.view.hideNotice();
    const next = this.prefetchedFor === a.id ? this.prefetched : null;
    if (next) {
      // The next task is already leased: show it now, send the labeling behind it.
      this.prefetched = null;
      this.prefetchedFor = null;
      performance.mark("stepwise:sent");
      performance.mark("stepwise:claimed");
      // Its own prefetch waits for the submit: until then the server still holds it as the
      // prefetched lease, and a labeler has only one of those.
      this.show(next, false);
      let kept = false;
      await this.sendOutbox(false, () => {
        kept = true;
      });
      if (!kept && this.assignment === next) {
        void this.prefetchNext();
      }
      if (kept && this.assignment === next && !this.busy) {
        // The labeling came back refused (400): its task is still the open lease, so the claim
        // brings it back with its ratings to be fixed; the task shown meanwhile stays leased
        // (prefetched) and comes back after it, with whatever was rated on it.
        this.stopTask();
        this.assignment = null;
        this.state = null;
        await this.loadNext();
      }
      return;
    }
    await this.loadNext();
  }

  // ---- keyboard -----------------------------------------------------------------------------

  private onKey(event: KeyboardEvent): void {
    if (event.defaultPrevented || this.view.reasonDialog.open || this.view.helpDialog.open) {
      return; // the dialogs handle their own keys (Esc closes them)
    }
    const target = event.target as HTMLElement | null;
    const action = keyAction({
      key: event.key,
      ctrlKey: event.ctrlKey,
      metaKey: event.metaKey,
      altKey: event.altKey,
      inTextField: !!target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)),
      onButton: target instanceof HTMLButtonElement,
    });
    if (!action) {
      return;
    }
    if (action.kind === "help") {
      event.preventDefault();
      this.view.openHelp();
      return;
    }
    if (!this.assignment || !this.state) {
      return;
    }
    event.preventDefault();
    switch (action.kind) {
      case "rate":
        if (!event.repeat) {
          // a held key must not rate the following steps too
          this.apply((a, s) => rate(a, s, action.rating as Rating), true);
        }
        break;
      case "flag":
        this.apply((a, s) => toggleFlag(a, s), true);
        break;
      case "undo":
        this.undo();
        break;
      case "next":
        this.next();
        break;
      case "previous":
        this.apply((a, s) => move(a, s, -1), false);
        break;
      case "submit":
        void this.submit();
        break;
      case "give_up":
        this.openReason("give_up");
        break;
      case "bad_problem":
        this.openReason("bad_problem");
        break;
    }
  }

  /** Next item; on the last item of a finished task, submits. */
  private next(): void {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s) {
      return;
    }
    const moved = move(a, s, 1);
    if (moved === s && outcome(a, s)) {
      void this.submit();
      return;
    }
    this.apply(() => moved, false);
  }

  private setStatus(text: string, kind = ""): void {
    this.view.setStatus(text, kind);
  }
}

