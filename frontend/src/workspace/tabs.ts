// Two tabs on one task: each tab announces the assignment it shows on a BroadcastChannel shared
// by the user's tabs; a tab that hears its own assignment from another says so. The server's
// draft check (a save from another tab must carry a newer rev) stops the silent overwrite.

type Message = { type: "showing" | "also_showing"; tab: string; assignment: number };

export class TabWatch {
  readonly id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  private channel: BroadcastChannel | null = null;
  private current: number | null = null;

  constructor(name: string, onSameTask: () => void) {
    if (typeof BroadcastChannel === "undefined") {
      return;
    }
    this.channel = new BroadcastChannel(name);
    this.channel.addEventListener("message", (event: MessageEvent<Message>) => {
      const msg = event.data;
      if (!msg || msg.tab === this.id || msg.assignment !== this.current) {
        return;
      }
      if (msg.type === "showing") {
        this.post("also_showing");
      }
      onSameTask();
    });
  }

  /** Announces the assignment this tab now shows (null: none). */
  showing(assignment: number | null): void {
    this.current = assignment;
    if (assignment !== null) {
      this.post("showing");
    }
  }

  private post(type: Message["type"]): void {
    if (this.channel && this.current !== null) {
      this.channel.postMessage({ type, tab: this.id, assignment: this.current } satisfies Message);
    }
  }
}
