// The workspace's DOM: built once, then updated from the controller's state (index.ts). Text
// goes in through Text nodes and KaTeX only (math.ts); nothing here sets innerHTML.
import { el, formatClock, kbd } from "../dom";
import type { Assignment, Focus, Progress, Rating } from "../labeling";
import { renderAnswer, renderMathText, renderStepText } from "../math";
import { buildGuidelines } from "./guidelines";
import { RATINGS } from "./keys";

/** How long a confirmation ("Submitted: found an error") stays on screen. */
const CONFIRM_MS = 6_000;

export interface ViewHandlers {
  rate(focus: Focus, rating: Rating): void;
  flag(focus: Focus): void;
  focus(focus: Focus): void;
  submit(): void;
  undo(): void;
  openReason(reason: "give_up" | "bad_problem"): void;
  sendReason(): void;
  checkAgain(): void;
}

interface Rows {
  steps: HTMLLIElement[];
  alts: Map<number, HTMLLIElement[]>;
  altHeaders: Map<number, HTMLLIElement>;
}

export class WorkspaceView {
  rows: Rows = { steps: [], alts: new Map(), altHeaders: new Map() };
  readonly statusLine = el("span", { id: "save-status", class: "save-status", role: "status" });
  readonly timer = el("span", {
    id: "timer",
    class: "timer",
    title: "Active time on this task (idle time is not counted)",
    "aria-label": "Active time on this task",
  });
  readonly queue = el("span", { id: "queue", class: "queue" });
  readonly notice = el("div", { id: "notice", class: "notice", role: "alert", hidden: true });
  readonly confirmation = el("div", {
    id: "confirmation",
    class: "confirmation",
    role: "status",
    "aria-live": "polite",
    hidden: true,
  });
  readonly problemText = el("div", { id: "problem-text", class: "math-text" });
  readonly answerText = el("span", { id: "reference-answer", class: "answer" });
  readonly stepList = el("ol", { id: "steps", class: "steps", "aria-label": "Solution steps" });
  readonly progress = el("p", { id: "progress", class: "progress", "aria-live": "polite" });
  readonly submitButton = el("button", { id: "submit", type: "button", class: "primary", disabled: true });
  readonly taskView: HTMLElement;
  readonly emptyView: HTMLElement;
  readonly reasonDialog = el("dialog", { id: "reason-dialog", "aria-labelledby": "reason-title" });
  readonly reasonTitle = el("h2", { id: "reason-title" });
  readonly reasonText = el("textarea", {
    id: "reason-text",
    rows: 4,
    // Checked by sendReason, so the message is ours and not the browser's tooltip.
    "aria-required": "true",
    "aria-labelledby": "reason-title",
    "aria-describedby": "reason-error",
  });
  readonly reasonError = el("p", { id: "reason-error", class: "field-error", "aria-live": "polite" });
  readonly helpDialog = buildGuidelines();
  private confirmTimer: number | undefined;

  constructor(
    readonly root: HTMLElement,
    private readonly on: ViewHandlers,
  ) {
    this.submitButton.append("Submit ", kbd("s"));
    this.submitButton.addEventListener("click", () => on.submit());
    const button = (id: string, label: string, key: string, action: () => void) => {
      const b = el("button", { id, type: "button", class: "secondary" });
      b.append(`${label} `, kbd(key));
      b.addEventListener("click", action);
      return b;
    };
    const undo = button("undo", "Undo", "u", () => on.undo());
    const giveUp = button("give-up", "Give up", "x", () => on.openReason("give_up"));
    const badProblem = button("bad-problem", "Report bad problem", "r", () => on.openReason("bad_problem"));
    const help = button("help", "Guidelines", "?", () => this.openHelp());

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
    retry.addEventListener("click", () => on.checkAgain());
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
    this.buildReasonDialog();

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
      el("span", {}, kbd("?"), " guidelines"),
    );

    root.replaceChildren(
      el("div", { class: "status-bar" }, this.queue, this.timer, this.statusLine),
      this.notice,
      this.confirmation,
      this.taskView,
      this.emptyView,
      legend,
      this.reasonDialog,
      this.helpDialog,
    );
  }

  private buildReasonDialog(): void {
    const send = el("button", { id: "reason-send", type: "submit", class: "primary" });
    send.append("Send ", kbd("Ctrl+Enter"));
    const cancel = el("button", { id: "reason-cancel", type: "button", class: "secondary", text: "Cancel" });
    cancel.addEventListener("click", () => this.reasonDialog.close());
    const form = el(
      "form",
      { id: "reason-form", method: "dialog" },
      this.reasonTitle,
      el("p", { class: "hint", text: "Say briefly why. This is required." }),
      this.reasonText,
      this.reasonError,
      el("div", { class: "actions" }, cancel, send),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.on.sendReason();
    });
    this.reasonText.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.on.sendReason();
      }
    });
    this.reasonDialog.append(form);
  }

  // ---- the task -----------------------------------------------------------------------------

  /** Builds every row of a task at once (KaTeX included); rows start hidden. */
  showTask(a: Assignment): void {
    renderMathText(this.problemText, a.problem.text);
    renderAnswer(this.answerText, a.problem.reference_answer);
    this.rows = { steps: [], alts: new Map(), altHeaders: new Map() };
    const nodes: HTMLElement[] = [];
    const last = a.steps.length - 1;
    a.steps.forEach((step, i) => {
      const li = this.row("step", i, `Step ${i + 1}`, step.text);
      li.id = `step-${i}`;
      if (i === last) {
        // The final step usually states the answer: the reference sits beside it.
        const ref = el("span", { class: "answer" });
        renderAnswer(ref, a.problem.reference_answer);
        li.querySelector(".item-body")?.append(
          el("div", { class: "reference-beside", id: "reference-beside" }, el("span", { class: "answer-label", text: "Reference answer: " }), ref),
        );
      }
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
    this.emptyView.hidden = true;
    this.taskView.hidden = false;
    this.taskView.classList.remove("leaving");
  }

  showEmpty(detail: string | null): void {
    this.taskView.hidden = true;
    this.emptyView.hidden = false;
    this.queue.textContent = "";
    this.timer.textContent = "";
    const p = this.emptyView.querySelector("#no-work-detail");
    if (p && detail) {
      p.textContent = detail;
    }
  }

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
        this.on.rate(focus, r.rating);
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
      this.on.flag(focus);
    });
    group.append(flag);
    return group;
  }

  private row(kind: "step" | "alt", index: number, title: string, text: string): HTMLLIElement {
    const focus: Focus = { kind, index };
    const body = el("div", { class: "item-text math-text" });
    renderStepText(body, text);
    const li = el(
      "li",
      { class: `item item-${kind}`, "data-kind": kind, "data-index": index, hidden: true },
      this.ratingGroup(`Rate ${title.toLowerCase()}`, focus),
      el("div", { class: "item-body" }, el("div", { class: "item-title", text: title }), body),
    );
    li.addEventListener("click", () => this.on.focus(focus));
    return li;
  }

  hideAllRows(errorStep: number): void {
    this.rows.steps.forEach((li) => {
      li.hidden = true;
    });
    this.rows.alts.forEach((list) =>
      list.forEach((li) => {
        li.hidden = true;
      }),
    );
    this.rows.altHeaders.forEach((h, i) => {
      h.hidden = i !== errorStep;
    });
  }

  rowFor(kind: "step" | "alt", index: number, errorStep: number): HTMLLIElement | undefined {
    return kind === "step" ? this.rows.steps[index] : this.rows.alts.get(errorStep)?.[index];
  }

  paintRow(li: HTMLLIElement, rating: Rating | null, flagged: boolean, focused: boolean): void {
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

  /** Scrolls the focused row into view, clear of the sticky bars at the top and bottom. */
  reveal(li: HTMLElement): void {
    const rect = li.getBoundingClientRect();
    const top = (this.root.querySelector(".status-bar") as HTMLElement | null)?.getBoundingClientRect().bottom ?? 0;
    const bar = this.taskView.querySelector(".finish-bar") as HTMLElement | null;
    const bottom = bar ? bar.getBoundingClientRect().top : window.innerHeight;
    const margin = 8;
    if (rect.bottom > bottom - margin) {
      window.scrollBy({ top: Math.min(rect.bottom - bottom + margin, rect.top - top - margin) });
    } else if (rect.top < top + margin) {
      window.scrollBy({ top: rect.top - top - margin });
    }
  }

  // ---- status, queue, timer, notices --------------------------------------------------------

  setQueue(progress: Progress | undefined): void {
    if (!progress) {
      this.queue.textContent = "";
      return;
    }
    const left = progress.left_capped ? `more than ${progress.left_in_round}` : String(progress.left_in_round);
    const round = progress.round < 0 ? "screening" : `round ${progress.round}`;
    this.queue.textContent = `Task ${progress.done_today + 1} today · ${left} left in ${round}`;
  }

  setTimer(ms: number): void {
    this.timer.textContent = `Time ${formatClock(ms)}`;
  }

  setStatus(text: string, kind = ""): void {
    this.statusLine.textContent = text;
    this.statusLine.dataset.kind = kind;
  }

  showNotice(text: string, ...extra: Node[]): void {
    this.notice.replaceChildren(text, ...extra);
    this.notice.hidden = false;
  }

  hideNotice(): void {
    this.notice.hidden = true;
  }

  /** A confirmation that stays for CONFIRM_MS (a new one replaces it), then fades. */
  confirm(text: string): void {
    window.clearTimeout(this.confirmTimer);
    this.confirmation.textContent = text;
    this.confirmation.hidden = false;
    this.confirmTimer = window.setTimeout(() => {
      this.confirmation.hidden = true;
    }, CONFIRM_MS);
  }

  openHelp(): void {
    if (!this.helpDialog.open && !this.reasonDialog.open) {
      this.helpDialog.showModal();
      // showModal focuses the Close button at the bottom; the guidelines are read from the top.
      this.helpDialog.scrollTop = 0;
    }
  }

  openReasonDialog(reason: "give_up" | "bad_problem"): void {
    this.reasonTitle.textContent = reason === "give_up" ? "Give up on this task" : "Report a bad problem";
    this.reasonText.value = "";
    this.reasonError.textContent = "";
    this.reasonDialog.showModal();
    this.reasonText.focus();
  }
}
