// The labeler's workspace at /label/: claim a task, rate its steps by keyboard, save drafts as
// the labeler works, submit, and go straight on to the next task.
//
// Where work is kept, so that a reload or a crash loses nothing:
// - every change is written to localStorage at once (`draft:<assignment>`), and sent to the
//   server as the assignment's draft: immediately after a rating or undo, debounced otherwise;
// - a finished labeling goes to a localStorage outbox before it is sent, and the outbox is
//   flushed (with retries) before the next claim, also after a reload. Submit is idempotent on
//   the server, so sending an entry twice is harmless.
// No wait between tasks: a claim returns the labeler's own open assignment first, so the next task
// cannot be fetched before the current one is submitted. Submit and the next claim are therefore
// sent back to back in the background while the page shows the submitted state, and the next
// task's rows are built in one go (KaTeX rendering included) as soon as the claim answers.
import * as api from "./api";
import { ApiError, NetworkError } from "./api";
import { ActiveTimer } from "./activity";
import { el, kbd } from "./dom";
import {
  type Assignment,
  type FinishReason,
  type Focus,
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
} from "./labeling";
import { renderAnswer, renderMathText } from "./math";

const HEARTBEAT_MS = 60_000;
const DRAFT_DEBOUNCE_MS = 1_500;
const MAX_RETRY_MS = 30_000;
const EMPTY_POLL_MS = 30_000;
const UNDO_LIMIT = 200;

const RATINGS: { rating: Rating; label: string; keys: string[]; cls: string }[] = [
  { rating: 1, label: "Great", keys: ["1", "g"], cls: "great" },
  { rating: 0, label: "Okay", keys: ["2", "o"], cls: "okay" },
  { rating: -1, label: "Bad", keys: ["3", "b"], cls: "bad" },
];

interface LocalDraft {
  state: WorkState;
  active_ms: number;
}

interface OutboxEntry {
  assignmentId: number;
  url: string;
  body: api.SubmitBody;
}

const sleep = (ms: number) => new Promise((resolve) => window.setTimeout(resolve, ms));

/** localStorage, scoped to the signed-in user; a full or disabled storage is not fatal. */
class LocalStore {
  constructor(private readonly prefix: string) {}

  get<T>(key: string): T | null {
    try {
      const raw = window.localStorage.getItem(this.prefix + key);
      return raw ? (JSON.parse(raw) as T) : null;
    } catch {
      return null;
    }
  }

  set(key: string, value: unknown): void {
    try {
      window.localStorage.setItem(this.prefix + key, JSON.stringify(value));
    } catch {
      // Storage full or blocked: the server draft still holds the work.
    }
  }

  remove(key: string): void {
    try {
      window.localStorage.removeItem(this.prefix + key);
    } catch {
      // ignore
    }
  }

  /** Drops drafts of assignments other than `keepId` (finished or lost leases). */
  pruneDrafts(keepId: number): void {
    try {
      const stale: string[] = [];
      for (let i = 0; i < window.localStorage.length; i++) {
        const key = window.localStorage.key(i);
        if (key?.startsWith(`${this.prefix}draft:`) && key !== `${this.prefix}draft:${keepId}`) {
          stale.push(key);
        }
      }
      stale.forEach((key) => window.localStorage.removeItem(key));
    } catch {
      // ignore
    }
  }
}

interface Rows {
  steps: HTMLLIElement[];
  alts: Map<number, HTMLLIElement[]>;
  altHeaders: Map<number, HTMLLIElement>;
}

export class Workspace {
  private assignment: Assignment | null = null;
  private state: WorkState | null = null;
  private undoStack: WorkState[] = [];
  private rows: Rows = { steps: [], alts: new Map(), altHeaders: new Map() };
  private readonly timer = new ActiveTimer();
  private readonly store: LocalStore;
  private heartbeatTimer: number | undefined;
  private draftTimer: number | undefined;
  private draftInFlight = false;
  private draftPending = false;
  private draftRetryMs = 2_000;
  private savedActiveMs = 0;
  private busy = false;
  private emptyPoll: number | undefined;
  private dialogReason: FinishReason | null = null;

  private readonly root: HTMLElement;
  private readonly statusLine: HTMLElement;
  private readonly notice: HTMLElement;
  private readonly taskView: HTMLElement;
  private readonly emptyView: HTMLElement;
  private readonly problemText: HTMLElement;
  private readonly answerText: HTMLElement;
  private readonly stepList: HTMLOListElement;
  private readonly progress: HTMLElement;
  private readonly submitButton: HTMLButtonElement;
  private readonly reasonDialog: HTMLDialogElement;
  private readonly reasonTitle: HTMLElement;
  private readonly reasonText: HTMLTextAreaElement;
  private readonly reasonError: HTMLElement;
  private readonly helpDialog: HTMLDialogElement;

  constructor(root: HTMLElement, username: string) {
    this.root = root;
    this.store = new LocalStore(`stepwise:${username}:`);
    this.statusLine = el("span", { id: "save-status", class: "save-status", role: "status" });
    this.notice = el("div", { id: "notice", class: "notice", role: "alert", hidden: true });
    this.problemText = el("div", { id: "problem-text", class: "math-text" });
    this.answerText = el("span", { id: "reference-answer", class: "answer" });
    this.stepList = el("ol", { id: "steps", class: "steps", "aria-label": "Solution steps" });
    this.progress = el("p", { id: "progress", class: "progress", "aria-live": "polite" });
    this.submitButton = el("button", {
      id: "submit",
      type: "button",
      class: "primary",
      disabled: true,
    });
    this.submitButton.append("Submit ", kbd("s"));
    this.submitButton.addEventListener("click", () => void this.submit());

    const giveUp = el("button", { id: "give-up", type: "button", class: "secondary" });
    giveUp.append("Give up ", kbd("x"));
    giveUp.addEventListener("click", () => this.openReason("give_up"));
    const badProblem = el("button", { id: "bad-problem", type: "button", class: "secondary" });
    badProblem.append("Report bad problem ", kbd("r"));
    badProblem.addEventListener("click", () => this.openReason("bad_problem"));
    const undo = el("button", { id: "undo", type: "button", class: "secondary" });
    undo.append("Undo ", kbd("u"));
    undo.addEventListener("click", () => this.undo());
    const help = el("button", { id: "help", type: "button", class: "secondary" });
    help.append("Keys ", kbd("?"));
    help.addEventListener("click", () => this.openHelp());

    this.taskView = el(
      "section",
      { id: "task", class: "task", hidden: true, "aria-label": "Labeling task" },
      el(
        "section",
        { class: "problem", "aria-labelledby": "problem-heading" },
        el("h2", { id: "problem-heading", text: "Problem" }),
        this.problemText,
        el("p", { class: "answer-line" }, "Reference answer: ", this.answerText),
      ),
      this.stepList,
      el(
        "div",
        { class: "finish-bar" },
        this.progress,
        el("div", { class: "actions" }, undo, giveUp, badProblem, help, this.submitButton),
      ),
    );
    const retry = el("button", { id: "check-again", type: "button", class: "primary" });
    retry.append("Check again");
    retry.addEventListener("click", () => void this.loadNext());
    this.emptyView = el(
      "section",
      { id: "no-work", class: "empty", hidden: true },
      el("h2", { text: "No work right now" }),
      el("p", {
        id: "no-work-detail",
        text: "There are no tasks for you at the moment. This page checks again every 30 seconds.",
      }),
      retry,
    );

    this.reasonTitle = el("h2", { id: "reason-title" });
    this.reasonText = el("textarea", {
      id: "reason-text",
      rows: 4,
      // Checked by sendReason, so the message is ours and not the browser's tooltip.
      "aria-required": "true",
      "aria-labelledby": "reason-title",
      "aria-describedby": "reason-error",
    });
    this.reasonError = el("p", { id: "reason-error", class: "field-error", "aria-live": "polite" });
    const reasonSend = el("button", { id: "reason-send", type: "submit", class: "primary" });
    reasonSend.append("Send ", kbd("Ctrl+Enter"));
    const reasonCancel = el("button", {
      id: "reason-cancel",
      type: "button",
      class: "secondary",
      text: "Cancel",
    });
    reasonCancel.addEventListener("click", () => this.reasonDialog.close());
    const reasonForm = el(
      "form",
      { id: "reason-form", method: "dialog" },
      this.reasonTitle,
      el("p", { class: "hint", text: "Say briefly why. This is required." }),
      this.reasonText,
      this.reasonError,
      el("div", { class: "actions" }, reasonCancel, reasonSend),
    );
    reasonForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.sendReason();
    });
    this.reasonText.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void this.sendReason();
      }
    });
    this.reasonDialog = el("dialog", { id: "reason-dialog", "aria-labelledby": "reason-title" });
    this.reasonDialog.append(reasonForm);

    this.helpDialog = this.buildHelp();

    const legend = el("footer", { id: "key-legend", class: "key-legend", "aria-label": "Keys" });
    for (const r of RATINGS) {
      legend.append(el("span", {}, kbd(...r.keys), ` ${r.label}`));
    }
    legend.append(
      el("span", {}, kbd("f"), " flag unsure"),
      el("span", {}, kbd("u", "⌫"), " undo"),
      el("span", {}, kbd("↵", "n"), " next"),
      el("span", {}, kbd("↑", "k"), " previous"),
      el("span", {}, kbd("s"), " submit"),
      el("span", {}, kbd("x"), " give up"),
      el("span", {}, kbd("r"), " bad problem"),
      el("span", {}, kbd("?"), " help"),
    );

    root.replaceChildren(
      el("div", { class: "status-bar" }, this.statusLine),
      this.notice,
      this.taskView,
      this.emptyView,
      legend,
      this.reasonDialog,
      this.helpDialog,
    );
    document.addEventListener("keydown", (event) => this.onKey(event));
    // Leaving or hiding the page: keep the latest active time with the local draft.
    const keepLocal = () => {
      if (this.assignment && this.state) {
        this.store.set(`draft:${this.assignment.id}`, {
          state: this.state,
          active_ms: this.timer.ms,
        });
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

  /** Sends any finished labelings still waiting, then claims and shows the next task. */
  private async loadNext(): Promise<void> {
    window.clearTimeout(this.emptyPoll);
    this.setStatus("Loading…");
    await this.flushOutbox();
    performance.mark("stepwise:sent");
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
          this.showNotice("If your session ended, sign in again: ");
          this.notice.append(el("a", { href: `/accounts/login/?next=/label/`, text: "sign in" }));
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

  private showEmpty(detail: string | null): void {
    this.assignment = null;
    this.state = null;
    this.taskView.hidden = true;
    this.emptyView.hidden = false;
    const p = this.emptyView.querySelector("#no-work-detail");
    if (p && detail) {
      p.textContent = detail;
    }
    if (this.statusLine.dataset.kind !== "saved") {
      this.setStatus(""); // keep "Submitted (...)" visible; drop "Loading…"
    }
    this.emptyPoll = window.setTimeout(() => void this.loadNext(), EMPTY_POLL_MS);
  }

  private show(a: Assignment): void {
    this.assignment = a;
    this.undoStack = [];
    this.store.pruneDrafts(a.id);
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

    renderMathText(this.problemText, a.problem.text);
    renderAnswer(this.answerText, a.problem.reference_answer);
    this.buildRows(a);
    this.emptyView.hidden = true;
    this.taskView.hidden = false;
    this.taskView.classList.remove("leaving");
    this.busy = false;
    this.update();
    this.setStatus(a.draft || fromLocal ? "Draft restored" : "New task");
    if (fromLocal && (!fromServer || fromLocal.rev > fromServer.rev)) {
      void this.saveDraft();
    }
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = window.setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    window.scrollTo({ top: 0 });
    // Read by benchmarks/bench_workspace.py: the time from finishing one task to the next shown.
    performance.mark("stepwise:shown");
  }

  private stopTask(): void {
    window.clearInterval(this.heartbeatTimer);
    window.clearTimeout(this.draftTimer);
    this.heartbeatTimer = undefined;
    this.draftTimer = undefined;
    this.draftPending = false;
    this.timer.stop();
  }

  // ---- rendering ----------------------------------------------------------------------------

  private ratingGroup(label: string, focus: Focus): HTMLElement {
    const group = el("div", { class: "rating", role: "group", "aria-label": label });
    for (const r of RATINGS) {
      const button = el("button", {
        type: "button",
        class: `rate rate-${r.cls}`,
        "data-rating": r.rating,
        "aria-pressed": "false",
        "aria-label": `${r.label} (${r.rating > 0 ? "+1" : r.rating}), key ${r.keys.join(" or ")}`,
        title: `${r.label}: ${r.keys.join(" or ")}`,
      });
      button.append(el("span", { class: "rate-label", text: r.label }), kbd(r.keys[0]));
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        this.apply((a, s) => rate(a, focusOn(a, s, focus), r.rating), true);
      });
      group.append(button);
    }
    const flag = el("button", {
      type: "button",
      class: "flag",
      "aria-pressed": "false",
      "aria-label": "Flag as unsure, key f",
      title: "Unsure: f",
    });
    flag.append(el("span", { class: "rate-label", text: "Unsure" }), kbd("f"));
    flag.addEventListener("click", (event) => {
      event.stopPropagation();
      this.apply((a, s) => toggleFlag(a, focusOn(a, s, focus)), true);
    });
    group.append(flag);
    return group;
  }

  private row(kind: "step" | "alt", index: number, title: string, text: string): HTMLLIElement {
    const focus: Focus = { kind, index };
    const body = el("div", { class: "item-text math-text" });
    renderMathText(body, text);
    const li = el(
      "li",
      { class: `item item-${kind}`, "data-kind": kind, "data-index": index, hidden: true },
      this.ratingGroup(`Rate ${title.toLowerCase()}`, focus),
      el("div", { class: "item-body" }, el("div", { class: "item-title", text: title }), body),
    );
    li.addEventListener("click", () => this.apply((a, s) => focusOn(a, s, focus), false));
    return li;
  }

  private buildRows(a: Assignment): void {
    this.rows = { steps: [], alts: new Map(), altHeaders: new Map() };
    const nodes: HTMLElement[] = [];
    a.steps.forEach((step, i) => {
      const li = this.row("step", i, `Step ${i + 1}`, step.text);
      li.id = `step-${i}`;
      this.rows.steps.push(li);
      nodes.push(li);
      if (step.alternatives.length) {
        const header = el(
          "li",
          { class: "alt-header", hidden: true },
          el("h3", { text: `Step ${i + 1} is Bad. Rate these alternatives for it:` }),
        );
        this.rows.altHeaders.set(i, header);
        nodes.push(header);
        const alts = step.alternatives.map((alt, j) => {
          const row = this.row("alt", j, `Alternative ${j + 1} for step ${i + 1}`, alt.text);
          row.id = `alt-${i}-${j}`;
          return row;
        });
        this.rows.alts.set(i, alts);
        nodes.push(...alts);
      }
    });
    this.stepList.replaceChildren(...nodes);
  }

  private paintRow(li: HTMLLIElement, rating: Rating | null, flagged: boolean, focused: boolean) {
    li.hidden = false;
    li.classList.toggle("focused", focused);
    li.classList.toggle("rated", rating !== null);
    li.dataset.rating = rating === null ? "" : String(rating);
    if (focused) {
      li.setAttribute("aria-current", "step");
    } else {
      li.removeAttribute("aria-current");
    }
    li.querySelectorAll<HTMLButtonElement>("button.rate").forEach((b) => {
      b.setAttribute("aria-pressed", String(Number(b.dataset.rating) === rating));
    });
    li.querySelector("button.flag")?.setAttribute("aria-pressed", String(flagged));
  }

  /** Brings the rows, progress line and submit button in line with the state. */
  private update(): void {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s) {
      return;
    }
    const items = visibleItems(a, s);
    const err = errorStep(s);
    this.rows.steps.forEach((li) => {
      li.hidden = true;
    });
    this.rows.alts.forEach((list) =>
      list.forEach((li) => {
        li.hidden = true;
      }),
    );
    this.rows.altHeaders.forEach((h, i) => {
      h.hidden = i !== err;
    });
    let focusedRow: HTMLLIElement | undefined;
    for (const item of items) {
      const mark = markAt(a, s, item);
      const li = item.kind === "step" ? this.rows.steps[item.index] : this.rows.alts.get(err)?.[item.index];
      if (!li || !mark) {
        continue;
      }
      const focused = item.kind === s.focus.kind && item.index === s.focus.index;
      this.paintRow(li, mark.rating, mark.flagged, focused);
      if (focused) {
        focusedRow = li;
      }
    }
    const done = outcome(a, s);
    this.submitButton.disabled = done === null || this.busy;
    if (done === "found_error") {
      this.progress.textContent = `Finished: step ${err + 1} is Bad. Press s to submit, or change a rating first.`;
    } else if (done === "solution") {
      this.progress.textContent = "Finished: every step rated, no Bad step. Press s to submit.";
    } else if (err >= 0) {
      const left = altMarks(a, s, err).filter((m) => m.rating === null).length;
      this.progress.textContent = `Step ${err + 1} is Bad: rate the ${left} remaining alternative${left === 1 ? "" : "s"}.`;
    } else {
      const shown = items.length;
      this.progress.textContent = `Step ${shown} of ${a.steps.length}.`;
    }
    this.root.dataset.outcome = done ?? "";
    focusedRow?.scrollIntoView({ block: "nearest" });
  }

  // ---- changing the state -------------------------------------------------------------------

  /** Applies a state change, remembers it for undo, and saves the draft (now if `urgent`). */
  private apply(change: (a: Assignment, s: WorkState) => WorkState, urgent: boolean): void {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s || this.busy) {
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
    if (!previous || !this.state || this.busy) {
      return;
    }
    // A fresh rev, so the undone state also wins over older drafts on restore.
    this.commit({ ...previous, rev: this.state.rev + 1 }, true);
  }

  // ---- server draft and lease ---------------------------------------------------------------

  private async saveDraft(): Promise<void> {
    const a = this.assignment;
    if (!a || !this.state) {
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
      await api.saveDraft(a.id, this.state, sentMs);
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
    if (this.timer.ms > this.savedActiveMs + 1_000) {
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
    this.showNotice(
      `This task is no longer yours (${err.message}). Your ratings on it could not be kept; here is new work.`,
    );
    await this.loadNext();
  }

  // ---- finishing ----------------------------------------------------------------------------

  private openReason(reason: "give_up" | "bad_problem"): void {
    if (!this.assignment || this.busy) {
      return;
    }
    this.dialogReason = reason;
    this.reasonTitle.textContent =
      reason === "give_up" ? "Give up on this task" : "Report a bad problem";
    this.reasonText.value = "";
    this.reasonError.textContent = "";
    this.reasonDialog.showModal();
    this.reasonText.focus();
  }

  private async sendReason(): Promise<void> {
    const reason = this.dialogReason;
    const text = this.reasonText.value.trim();
    if (!reason) {
      return;
    }
    if (!text) {
      this.reasonError.textContent = "Please give a reason.";
      this.reasonText.focus();
      return;
    }
    this.reasonDialog.close();
    await this.finishTask(reason, text);
  }

  private async submit(): Promise<void> {
    const a = this.assignment;
    const s = this.state;
    if (!a || !s || this.busy) {
      return;
    }
    const done = outcome(a, s);
    if (!done) {
      this.showNotice("Not finished yet: rate every shown step (and the alternatives after a Bad step).");
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
    const outbox = this.store.get<OutboxEntry[]>("outbox") ?? [];
    outbox.push({ assignmentId: a.id, url: api.finishUrl(a.id, reason), body });
    this.store.set("outbox", outbox);
    this.stopTask();
    // From here on the task is the outbox's: a late draft or heartbeat answer (409 once the
    // submit has landed) must not be mistaken for a lost lease.
    this.assignment = null;
    this.state = null;
    this.submitButton.disabled = true;
    this.root.dataset.outcome = "";
    this.taskView.classList.add("leaving");
    this.setStatus("Submitting…", "saving");
    this.hideNotice();
    await this.loadNext();
  }

  /** Sends queued labelings in order, retrying network failures until each gets an answer. */
  private async flushOutbox(): Promise<void> {
    for (let guard = 0; guard < 100; guard++) {
      const outbox = this.store.get<OutboxEntry[]>("outbox") ?? [];
      const entry = outbox[0];
      if (!entry) {
        return;
      }
      let delay = 1_000;
      let keepDraft = false;
      for (;;) {
        try {
          const result = await api.finish(entry.url, entry.body);
          this.setStatus(`Submitted (${result.finish_reason.replace("_", " ")})`, "saved");
          break;
        } catch (err) {
          if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
            this.setStatus("Offline: your labeling is kept on this device and will be sent…", "offline");
            await sleep(delay);
            delay = Math.min(delay * 2, MAX_RETRY_MS);
            continue;
          }
          // Refused for good. A 400 leaves the task open: keep its draft so it comes back with
          // its ratings to be fixed. Otherwise (lease lost, forbidden) the work cannot be kept.
          this.showNotice(`Your labeling was not accepted: ${(err as Error).message}`);
          keepDraft = err instanceof ApiError && err.status === 400;
          break;
        }
      }
      this.store.set("outbox", (this.store.get<OutboxEntry[]>("outbox") ?? []).slice(1));
      if (!keepDraft) {
        this.store.remove(`draft:${entry.assignmentId}`);
      }
    }
  }

  // ---- keyboard -----------------------------------------------------------------------------

  private onKey(event: KeyboardEvent): void {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) {
      return;
    }
    if (this.reasonDialog.open || this.helpDialog.open) {
      return; // the dialogs handle their own keys (Esc closes them)
    }
    const target = event.target as HTMLElement | null;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      this.openHelp();
      return;
    }
    if (!this.assignment || !this.state) {
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const rating = RATINGS.find((r) => r.keys.includes(key));
    if (rating) {
      event.preventDefault();
      if (event.repeat) {
        return; // a held key must not rate the following steps too
      }
      this.apply((a, s) => rate(a, s, rating.rating), true);
      return;
    }
    switch (key) {
      case "f":
        this.apply((a, s) => toggleFlag(a, s), true);
        break;
      case "u":
      case "Backspace":
        this.undo();
        break;
      case "Enter":
      case "n":
      case "j":
      case "ArrowDown":
        if (key === "Enter" && target instanceof HTMLButtonElement) {
          return; // Enter on a focused button clicks it
        }
        this.next();
        break;
      case "k":
      case "p":
      case "ArrowUp":
        this.apply((a, s) => move(a, s, -1), false);
        break;
      case "s":
        void this.submit();
        break;
      case "x":
        this.openReason("give_up");
        break;
      case "r":
        this.openReason("bad_problem");
        break;
      default:
        return;
    }
    event.preventDefault();
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

  // ---- help, notices, status ----------------------------------------------------------------

  private buildHelp(): HTMLDialogElement {
    const rows: [string[], string][] = [
      [["1", "g"], "Great (+1): correct and a reasonable step forward"],
      [["2", "o"], "Okay (0): correct but no progress, or subtly misleading"],
      [["3", "b"], "Bad (-1): wrong, unverifiable, or derails the solution"],
      [["f"], "Flag the focused step as unsure (press again to clear)"],
      [["u", "Backspace"], "Undo the last rating or flag"],
      [["Enter", "n", "↓"], "Next step; on a finished task, submit"],
      [["↑", "k"], "Previous step (click a step to change its rating)"],
      [["s"], "Submit a finished task"],
      [["x"], "Give up (asks for a reason)"],
      [["r"], "Report a bad problem (asks for a reason)"],
      [["?"], "This help; Esc closes it"],
    ];
    const table = el("table", { class: "help-table" });
    for (const [keys, what] of rows) {
      table.append(el("tr", {}, el("td", {}, kbd(...keys)), el("td", { text: what })));
    }
    const close = el("button", { type: "button", class: "primary", text: "Close" });
    const dialog = el(
      "dialog",
      { id: "help-dialog", "aria-labelledby": "help-title" },
      el("h2", { id: "help-title", text: "Keyboard" }),
      el("p", {
        text: "Steps appear one at a time. After the first Bad step, rate the alternatives offered for it; the task then ends. Ratings can be changed until you submit.",
      }),
      table,
      close,
    );
    close.addEventListener("click", () => dialog.close());
    return dialog;
  }

  private openHelp(): void {
    if (!this.helpDialog.open && !this.reasonDialog.open) {
      this.helpDialog.showModal();
    }
  }

  private setStatus(text: string, kind = ""): void {
    this.statusLine.textContent = text;
    this.statusLine.dataset.kind = kind;
  }

  private showNotice(text: string): void {
    this.notice.textContent = text;
    this.notice.hidden = false;
  }

  private hideNotice(): void {
    this.notice.hidden = true;
  }
}
