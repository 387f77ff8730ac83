// The interactive (phase 1) page at /label/interactive/: the generator offers K candidate next
// steps, the labeler rates every one, then chooses one or writes their own, and the generator goes
// on from there until a step holds the final answer (`# Answer`), or the labeler gives up or
// reports a bad problem.
//
// What is kept where, so a reload loses nothing and never re-samples:
// - decided steps and every candidate set shown live on the server (the assignment's trajectory);
// - the ratings and flags of the current step so far go to the assignment's server draft
//   (debounced) and to localStorage at once; a reload restores them when the step is the same.
// Waiting: while the labeler rates, the page asks the server to sample the next step's
// candidates for the most likely choice (the best-rated candidate so far), so that choosing it
// shows the next candidates at once.
import "./interactive.css";
import { ApiError, NetworkError, request } from "./api";
import { ActiveTimer } from "./activity";
import { el, formatDuration, kbd } from "./dom";
import { renderRounds } from "./interactive_rounds";
import { renderAnswer, renderStepText } from "./math";

type Rating = -1 | 0 | 1;

interface Candidate {
  index: number;
  text: string;
  ends_solution: boolean;
}

interface DecidedStep {
  position: number;
  text: string;
  written: boolean;
  chosen: number | null;
  candidates: { text: string; rating: Rating | null; flagged: boolean }[];
}

export interface Trajectory {
  id: number;
  state: "active" | "submitted";
  lease_expires_at: string;
  problem: { text: string; reference_answer: string };
  k: number;
  steps: DecidedStep[];
  current: { position: number; candidates: Candidate[]; elapsed_ms: number } | null;
  draft: { state: unknown; active_ms: number; saved_at: string } | null;
  active_ms: number;
  labeling_id: number | null;
  finish_reason: string | null;
}

interface StepDraft {
  position: number;
  ratings: (Rating | null)[];
  flags: boolean[];
  focus: number;
  writing: string | null;
}

const BASE = "/api/labeling";
const HEARTBEAT_MS = 60_000;
const DRAFT_DEBOUNCE_MS = 1_000;
const RATINGS: { rating: Rating; label: string; keys: string[]; cls: string }[] = [
  { rating: 1, label: "Great", keys: ["1", "g"], cls: "great" },
  { rating: 0, label: "Okay", keys: ["2", "o"], cls: "okay" },
  { rating: -1, label: "Bad", keys: ["3", "b"], cls: "bad" },
];

/** The candidate worth sampling ahead for: the best-rated one that does not end the solution. */
export function likelyChoice(candidates: Candidate[], ratings: (Rating | null)[]): number | null {
  let best: number | null = null;
  let bestRating = -2;
  candidates.forEach((c, i) => {
    const r = ratings[i];
    if (r === null || r === undefined || c.ends_solution) {
      return;
    }
    if (r > bestRating) {
      best = i;
      bestRating = r;
    }
  });
  return bestRating >= 0 ? best : null;
}

export class Interactive {
  private t: Trajectory | null = null;
  private ratings: (Rating | null)[] = [];
  private flags: boolean[] = [];
  private focus = 0;
  private writing: string | null = null;
  private busy = false;
  private prefetched = new Set<string>();
  private readonly timer = new ActiveTimer();
  private heartbeatTimer: number | undefined;
  private draftTimer: number | undefined;
  private waitTimer: number | undefined;
  private readonly status = el("div", { class: "p1-status", role: "status", "aria-live": "polite" });
  private readonly body = el("div", { class: "p1" });

  constructor(private readonly root: HTMLElement) {}

  async start(): Promise<void> {
    this.root.replaceChildren(this.status, this.body);
    document.addEventListener("keydown", (event) => this.onKey(event));
    await this.claim();
  }

  // ---- server -------------------------------------------------------------------------------

  private async claim(): Promise<void> {
    this.stopTimers();
    this.body.replaceChildren(el("p", { class: "muted", text: "Finding a problem…" }));
    this.waitStarted("Sampling the first candidates");
    try {
      const res = await request<{ assignment: Trajectory }>("POST", `${BASE}/phase1/claim/`);
      this.waitDone();
      if (!res) {
        this.t = null;
        this.body.replaceChildren(
          el("div", { class: "empty" }, el("p", { text: "No interactive work right now." })),
        );
        return;
      }
      this.load(res.assignment, true);
    } catch (err) {
      this.waitDone();
      this.showError(err);
    }
  }

  private load(t: Trajectory, fresh: boolean): void {
    this.t = t;
    this.prefetched.clear();
    const n = t.current ? t.current.candidates.length : 0;
    this.ratings = new Array(n).fill(null);
    this.flags = new Array(n).fill(false);
    this.focus = 0;
    this.writing = null;
    const draft = this.restoreDraft(t);
    if (draft) {
      this.ratings = draft.ratings;
      this.flags = draft.flags;
      this.focus = Math.min(draft.focus, Math.max(0, n - 1));
      this.writing = draft.writing;
    }
    if (fresh) {
      this.timer.start(t.draft?.active_ms ?? t.active_ms ?? 0);
      this.heartbeatTimer = window.setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    }
    this.render();
    if (t.current) {
      performance.mark("stepwise:candidates-shown");
    }
    this.maybePrefetch();
  }

  private restoreDraft(t: Trajectory): StepDraft | null {
    if (!t.current) {
      return null;
    }
    const candidates = [t.draft?.state as StepDraft | undefined, this.localDraft(t.id)];
    for (const d of candidates) {
      if (
        d &&
        d.position === t.current.position &&
        Array.isArray(d.ratings) &&
        d.ratings.length === t.current.candidates.length
      ) {
        return d;
      }
    }
    return null;
  }

  private localDraft(id: number): StepDraft | null {
    try {
      const raw = window.localStorage.getItem(`p1draft:${id}`);
      return raw ? (JSON.parse(raw) as StepDraft) : null;
    } catch {
      return null;
    }
  }

  private draftNow(): StepDraft | null {
    if (!this.t?.current) {
      return null;
    }
    return {
      position: this.t.current.position,
      ratings: this.ratings,
      flags: this.flags,
      focus: this.focus,
      writing: this.writing,
    };
  }

  private saveDraft(): void {
    const t = this.t;
    const d = this.draftNow();
    if (!t || !d) {
      return;
    }
    try {
      window.localStorage.setItem(`p1draft:${t.id}`, JSON.stringify(d));
    } catch {
      // storage full or blocked: the server draft still holds it
    }
    window.clearTimeout(this.draftTimer);
    this.draftTimer = window.setTimeout(() => {
      void request("PUT", `${BASE}/assignments/${t.id}/draft/`, {
        state: this.draftNow(),
        active_ms: this.timer.ms,
      })
        .then(() => this.setStatus("Saved", "saved"))
        .catch((err) => this.onBackgroundError(err));
    }, DRAFT_DEBOUNCE_MS);
  }

  private async heartbeat(): Promise<void> {
    if (!this.t || this.t.state !== "active") {
      return;
    }
    try {
      await request("POST", `${BASE}/assignments/${this.t.id}/heartbeat/`);
    } catch (err) {
      this.onBackgroundError(err);
    }
  }

  /** Sample the next candidates ahead for the likely choice (once per candidate and step). */
  private maybePrefetch(): void {
    const t = this.t;
    if (!t?.current || t.state !== "active") {
      return;
    }
    const choice = likelyChoice(t.current.candidates, this.ratings);
    if (choice === null) {
      return;
    }
    const key = `${t.current.position}:${choice}`;
    if (this.prefetched.has(key) || this.prefetched.size >= 2) {
      return;
    }
    this.prefetched.add(key);
    void request("POST", `${BASE}/phase1/assignments/${t.id}/prefetch/`, {
      position: t.current.position,
      candidate: choice,
    }).catch((err) => this.onBackgroundError(err));
  }

  private async decide(chosen: number | null, humanText: string | null): Promise<void> {
    const t = this.t;
    if (!t?.current || this.busy) {
      return;
    }
    if (this.ratings.some((r) => r === null)) {
      this.setStatus("Rate every candidate first (1 Great, 2 Okay, 3 Bad).", "error");
      const next = this.ratings.findIndex((r) => r === null);
      this.moveFocus(next);
      return;
    }
    this.busy = true;
    performance.mark("stepwise:choice");
    this.waitStarted("Sampling the next candidates");
    try {
      const res = await request<{ assignment: Trajectory; finished: boolean }>(
        "POST",
        `${BASE}/phase1/assignments/${t.id}/step/`,
        {
          position: t.current.position,
          ratings: this.ratings,
          flags: this.flags,
          chosen,
          human_text: humanText,
          human_flagged: false,
          total_time_ms: this.timer.ms,
        },
      );
      this.waitDone();
      this.clearLocalDraft(t.id);
      if (res?.finished) {
        this.finished(res.assignment);
      } else if (res) {
        this.load(res.assignment, false);
      }
    } catch (err) {
      this.waitDone();
      this.showError(err);
    } finally {
      this.busy = false;
    }
  }

  private async undo(): Promise<void> {
    const t = this.t;
    if (!t || !t.steps.length || this.busy || t.state !== "active") {
      return;
    }
    this.busy = true;
    try {
      const res = await request<{ assignment: Trajectory }>(
        "POST",
        `${BASE}/phase1/assignments/${t.id}/undo/`,
        { position: t.steps.length - 1 },
      );
      if (res) {
        this.load(res.assignment, false);
      }
    } catch (err) {
      this.showError(err);
    } finally {
      this.busy = false;
    }
  }

  private async end(reason: "give_up" | "bad_problem", text: string): Promise<void> {
    const t = this.t;
    if (!t || this.busy) {
      return;
    }
    this.busy = true;
    try {
      await request("POST", `${BASE}/phase1/assignments/${t.id}/end/`, {
        finish_reason: reason,
        reason: text,
        position: t.current ? t.current.position : t.steps.length,
        ratings: t.current ? this.ratings : [],
        flags: t.current ? this.flags : [],
        total_time_ms: this.timer.ms,
      });
      this.clearLocalDraft(t.id);
      this.finished({ ...t, state: "submitted", finish_reason: reason });
    } catch (err) {
      this.showError(err);
    } finally {
      this.busy = false;
    }
  }

  private clearLocalDraft(id: number): void {
    try {
      window.localStorage.removeItem(`p1draft:${id}`);
    } catch {
      // ignore
    }
  }

  private finished(t: Trajectory): void {
    this.stopTimers();
    this.t = { ...t, state: "submitted" };
    const why = t.finish_reason === "solution" ? "Solution finished" : "Submitted";
    this.body.replaceChildren(
      el(
        "div",
        { class: "empty p1-done" },
        el("p", { text: `${why}: ${t.steps.length} steps. Thank you.` }),
        el("p", {}, "Press ", kbd("Enter"), " for the next problem."),
      ),
    );
    this.setStatus("Submitted", "saved");
  }

  // ---- waiting ------------------------------------------------------------------------------

  private waitStarted(what: string): void {
    const started = performance.now();
    window.clearInterval(this.waitTimer);
    const show = () =>
      this.setStatus(`${what}… ${formatDuration(performance.now() - started)}`, "waiting");
    show();
    this.waitTimer = window.setInterval(show, 100);
    this.body.classList.add("p1-waiting");
  }

  private waitDone(): void {
    window.clearInterval(this.waitTimer);
    this.waitTimer = undefined;
    this.body.classList.remove("p1-waiting");
    this.setStatus("", "");
  }

  private setStatus(text: string, kind: string): void {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  private stopTimers(): void {
    window.clearInterval(this.heartbeatTimer);
    window.clearTimeout(this.draftTimer);
    this.heartbeatTimer = undefined;
    this.timer.stop();
  }

  private onBackgroundError(err: unknown): void {
    if (err instanceof ApiError && err.leaseLost) {
      this.showError(err);
    } else if (err instanceof NetworkError) {
      this.setStatus("Cannot reach the server; your ratings are kept in this browser.", "offline");
    }
  }

  private showError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof ApiError && (err.leaseLost || err.status === 423)) {
      this.stopTimers();
      this.body.replaceChildren(
        el("div", { class: "empty" }, el("p", { text: message }), el("p", {}, "Press ", kbd("Enter"), " to continue.")),
      );
      this.t = null;
    }
    this.setStatus(message, "error");
  }

  // ---- rendering ----------------------------------------------------------------------------

  private render(): void {
    const t = this.t;
    if (!t) {
      return;
    }
    const problem = el("div", { class: "problem math-text" });
    renderStepText(problem, t.problem.text);
    const answer = el("span", { class: "answer" });
    renderAnswer(answer, t.problem.reference_answer);
    const decided = el("ol", { class: "p1-trajectory", "aria-label": "Solution so far" });
    t.steps.forEach((step) => {
      const text = el("div", { class: "math-text" });
      renderStepText(text, step.text);
      decided.append(
        el(
          "li",
          { class: `p1-decided${step.written ? " p1-written" : ""}`, "data-position": step.position },
          el("span", {
            class: "p1-tag",
            text: step.written ? "written" : `candidate ${(step.chosen ?? 0) + 1} of ${step.candidates.length}`,
          }),
          text,
        ),
      );
    });
    const parts: HTMLElement[] = [
      el("section", { class: "p1-problem" }, el("h1", { text: "Problem" }), problem),
      el("p", { class: "answer-line" }, "Reference answer: ", answer),
      el("h2", { text: "Solution so far" }),
      t.steps.length ? decided : el("p", { class: "muted", text: "No steps yet." }),
    ];
    if (t.current) {
      parts.push(this.renderCurrent(t));
    }
    parts.push(this.legend());
    this.body.replaceChildren(...parts);
    const focused = this.body.querySelector(".p1-candidate.focused");
    focused?.scrollIntoView({ block: "nearest" });
    const area = this.body.querySelector<HTMLTextAreaElement>("textarea.p1-write");
    area?.focus();
  }

  private renderCurrent(t: Trajectory): HTMLElement {
    const current = t.current!;
    const list = el("ol", { class: "p1-candidates", "aria-label": `Candidates for step ${current.position + 1}` });
    current.candidates.forEach((c, i) => {
      const text = el("div", { class: "item-text math-text" });
      renderStepText(text, c.text);
      const group = el("div", { class: "rating", role: "group", "aria-label": `Rate candidate ${i + 1}` });
      for (const r of RATINGS) {
        const button = el("button", {
          type: "button",
          class: `rate rate-${r.cls}`,
          "aria-pressed": String(this.ratings[i] === r.rating),
          title: `${r.label}: ${r.keys.join(" or ")}`,
        });
        button.append(el("span", { class: "rate-label", text: r.label }), kbd(r.keys[0]));
        button.addEventListener("click", () => {
          this.focus = i;
          this.rate(r.rating);
        });
        group.append(button);
      }
      const flag = el("button", {
        type: "button",
        class: "flag",
        "aria-pressed": String(this.flags[i]),
        title: "Unsure: f",
      });
      flag.append(el("span", { class: "rate-label", text: "Unsure" }), kbd("f"));
      flag.addEventListener("click", () => {
        this.focus = i;
        this.toggleFlag();
      });
      group.append(flag);
      const choose = el("button", { type: "button", class: "secondary p1-choose", title: "Choose: Enter" });
      choose.append("Choose ", kbd("Enter"));
      choose.addEventListener("click", () => {
        this.focus = i;
        void this.decide(i, null);
      });
      const li = el(
        "li",
        {
          class: `item p1-candidate${i === this.focus && this.writing === null ? " focused" : ""}`,
          "data-index": i,
          "data-rating": this.ratings[i] === null ? undefined : String(this.ratings[i]),
        },
        group,
        el(
          "div",
          { class: "item-body" },
          el("div", { class: "item-title", text: `Candidate ${i + 1}${c.ends_solution ? " (final answer)" : ""}` }),
          text,
        ),
        choose,
      );
      li.addEventListener("click", () => {
        if (this.focus !== i) {
          this.focus = i;
          this.render();
        }
      });
      list.append(li);
    });
    const section = el(
      "section",
      { class: "p1-current" },
      el("h2", {
        text: `Step ${current.position + 1}: rate every candidate, then choose one or write your own`,
      }),
    );
    if (!current.candidates.length) {
      section.append(el("p", { class: "muted", text: "The generator offered nothing here: write the step." }));
    } else {
      section.append(list);
    }
    if (this.writing !== null) {
      section.append(this.renderWriter());
    } else {
      const write = el("button", { type: "button", class: "secondary", title: "Write your own step: w" });
      write.append("Write my own step ", kbd("w"));
      write.addEventListener("click", () => this.startWriting());
      section.append(el("div", { class: "actions" }, write));
    }
    return section;
  }

  private renderWriter(): HTMLElement {
    const area = el("textarea", {
      class: "p1-write",
      rows: 3,
      "aria-label": "Your step",
      placeholder: "Your step (LaTeX in $...$). End the solution with a line # Answer and the answer.",
    });
    area.value = this.writing ?? "";
    const preview = el("div", { class: "p1-preview math-text", "aria-label": "Preview" });
    renderStepText(preview, area.value);
    area.addEventListener("input", () => {
      this.writing = area.value;
      renderStepText(preview, area.value);
      this.saveDraft();
    });
    const submit = el("button", { type: "button", class: "primary" });
    submit.append("Use my step ", kbd("Ctrl+Enter"));
    submit.addEventListener("click", () => void this.submitWritten());
    const cancel = el("button", { type: "button", class: "secondary" });
    cancel.append("Cancel ", kbd("Esc"));
    cancel.addEventListener("click", () => this.stopWriting());
    return el("div", { class: "p1-writer" }, area, preview, el("div", { class: "actions" }, submit, cancel));
  }

  private legend(): HTMLElement {
    return el(
      "p",
      { class: "key-legend" },
      kbd("↑", "k"), " ", kbd("↓", "j"), " move · ",
      kbd("1", "g"), " Great · ", kbd("2", "o"), " Okay · ", kbd("3", "b"), " Bad · ",
      kbd("f"), " unsure · ", kbd("Enter"), " choose · ", kbd("w"), " write · ",
      kbd("u"), " back one step · ", kbd("x"), " give up · ", kbd("r"), " bad problem",
    );
  }

  // ---- actions ------------------------------------------------------------------------------

  private rate(rating: Rating): void {
    if (!this.t?.current || this.focus >= this.ratings.length) {
      return;
    }
    this.ratings[this.focus] = rating;
    // On to the next unrated candidate, as phase 2 moves to the next step.
    const next = this.ratings.findIndex((r, i) => r === null && i > this.focus);
    const wrap = this.ratings.findIndex((r) => r === null);
    if (next >= 0) {
      this.focus = next;
    } else if (wrap >= 0) {
      this.focus = wrap;
    }
    this.saveDraft();
    this.render();
    this.maybePrefetch();
  }

  private toggleFlag(): void {
    if (!this.t?.current || this.focus >= this.flags.length) {
      return;
    }
    this.flags[this.focus] = !this.flags[this.focus];
    this.saveDraft();
    this.render();
  }

  private moveFocus(index: number): void {
    const n = this.ratings.length;
    if (!n) {
      return;
    }
    this.focus = Math.max(0, Math.min(n - 1, index));
    this.render();
  }

  private startWriting(): void {
    this.writing = this.writing ?? "";
    this.render();
  }

  private stopWriting(): void {
    this.writing = null;
    this.saveDraft();
    this.render();
  }

  private async submitWritten(): Promise<void> {
    const text = (this.writing ?? "").trim();
    if (!text) {
      this.setStatus("Write the step first.", "error");
      return;
    }
    await this.decide(null, text);
  }

  private askReason(title: string): Promise<string | null> {
    return new Promise((resolve) => {
      const area = el("textarea", { rows: 3, "aria-label": "Reason" });
      const ok = el("button", { type: "button", class: "primary", text: "Send" });
      const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
      const dialog = el("dialog", {}, el("h2", { text: title }), area, el("div", { class: "actions" }, ok, cancel));
      const close = (value: string | null) => {
        dialog.close();
        dialog.remove();
        resolve(value);
      };
      ok.addEventListener("click", () => (area.value.trim() ? close(area.value.trim()) : area.focus()));
      cancel.addEventListener("click", () => close(null));
      dialog.addEventListener("cancel", () => close(null));
      area.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && area.value.trim()) {
          event.preventDefault();
          close(area.value.trim());
        }
      });
      document.body.append(dialog);
      dialog.showModal();
      area.focus();
    });
  }

  private async endWithReason(reason: "give_up" | "bad_problem"): Promise<void> {
    const text = await this.askReason(reason === "give_up" ? "Why give up?" : "What is wrong with the problem?");
    if (text) {
      await this.end(reason, text);
    }
  }

  private onKey(event: KeyboardEvent): void {
    if (event.altKey || event.metaKey || document.querySelector("dialog[open]")) {
      return;
    }
    const target = event.target as HTMLElement | null;
    if (target?.tagName === "TEXTAREA") {
      if (event.key === "Enter" && event.ctrlKey) {
        event.preventDefault();
        void this.submitWritten();
      } else if (event.key === "Escape") {
        event.preventDefault();
        this.stopWriting();
      }
      return;
    }
    if (event.ctrlKey) {
      return;
    }
    const t = this.t;
    if (!t || t.state !== "active") {
      if (event.key === "Enter" && !this.busy) {
        event.preventDefault();
        void this.claim();
      }
      return;
    }
    if (this.busy) {
      return;
    }
    const key = event.key;
    const rating = RATINGS.find((r) => r.keys.includes(key.toLowerCase()));
    if (rating) {
      this.rate(rating.rating);
    } else if (key === "ArrowDown" || key === "j") {
      this.moveFocus(this.focus + 1);
    } else if (key === "ArrowUp" || key === "k") {
      this.moveFocus(this.focus - 1);
    } else if (key === "f") {
      this.toggleFlag();
    } else if (key === "Enter" || key === "c") {
      if (t.current?.candidates.length) {
        void this.decide(this.focus, null);
      }
    } else if (key === "w") {
      this.startWriting();
    } else if (key === "u") {
      void this.undo();
    } else if (key === "x") {
      void this.endWithReason("give_up");
    } else if (key === "r") {
      void this.endWithReason("bad_problem");
    } else {
      return;
    }
    event.preventDefault();
  }
}

function boot(): void {
  const root = document.getElementById("app");
  if (root && document.body.dataset.page === "interactive") {
    void new Interactive(root).start();
  } else if (root && document.body.dataset.page === "phase1-rounds") {
    void renderRounds(root, request);
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", boot);
} else {
  boot();
}
