// Active time on task: time counts only while the page is visible and the labeler has pressed a
// key, clicked, scrolled or moved the pointer within the last IDLE_MS. Ticks are short and each
// one is capped, so a laptop waking from sleep does not add the time it slept.

const IDLE_MS = 60_000;
const TICK_MS = 1_000;
const MAX_STEP_MS = 5_000;
const EVENTS = ["keydown", "pointerdown", "pointermove", "wheel", "scroll", "touchstart", "focus"];

export class ActiveTimer {
  private activeMs = 0;
  private lastTick = performance.now();
  private lastActivity = performance.now();
  private interval: number | undefined;
  private readonly onActivity = () => {
    this.tick();
    this.lastActivity = performance.now();
  };
  private readonly onVisibility = () => {
    if (document.visibilityState === "visible") {
      // Hidden time never counts: restart the clock instead of ticking across the gap.
      this.lastTick = performance.now();
      this.lastActivity = this.lastTick;
    } else {
      this.tick();
    }
  };

  start(initialMs: number): void {
    this.stop();
    this.activeMs = Math.max(0, initialMs);
    this.lastTick = performance.now();
    this.lastActivity = performance.now();
    for (const name of EVENTS) {
      window.addEventListener(name, this.onActivity, { passive: true, capture: true });
    }
    document.addEventListener("visibilitychange", this.onVisibility);
    this.interval = window.setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    if (this.interval !== undefined) {
      window.clearInterval(this.interval);
      this.interval = undefined;
    }
    for (const name of EVENTS) {
      window.removeEventListener(name, this.onActivity, { capture: true });
    }
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  /** Adds the time since the last tick if the labeler counted as active during it. */
  tick(): void {
    const now = performance.now();
    const visible = document.visibilityState === "visible";
    if (visible && this.lastTick - this.lastActivity < IDLE_MS) {
      this.activeMs += Math.min(now - this.lastTick, MAX_STEP_MS);
    }
    this.lastTick = now;
  }

  /** Active milliseconds so far (ticks first, so the figure is current). */
  get ms(): number {
    this.tick();
    return Math.round(this.activeMs);
  }
}
