// localStorage, scoped to the signed-in user; a full or disabled storage is never fatal (the
// server draft still holds the work).

export class LocalStore {
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

  /** Drops drafts of assignments other than `keepIds` (finished or lost leases). */
  pruneDrafts(...keepIds: number[]): void {
    try {
      const keep = new Set(keepIds.map((id) => `${this.prefix}draft:${id}`));
      const stale: string[] = [];
      for (let i = 0; i < window.localStorage.length; i++) {
        const key = window.localStorage.key(i);
        if (key?.startsWith(`${this.prefix}draft:`) && !keep.has(key)) {
          stale.push(key);
        }
      }
      stale.forEach((key) => window.localStorage.removeItem(key));
    } catch {
      // ignore
    }
  }
}
