/**
 * A small cache whose entries expire: secrets outlive one invocation (a warm Lambda reuses them)
 * but not a rotation for long. It caches the promise, so concurrent readers share one fetch, and
 * forgets a fetch that failed, so the next reader tries again.
 */
export class TtlCache<T> {
  private readonly entries = new Map<string, { value: Promise<T>; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string, fetch: () => Promise<T>, options: { refresh?: boolean } = {}): Promise<T> {
    const entry = this.entries.get(key);
    if (entry && !options.refresh && entry.expiresAt > this.now()) return entry.value;
    const value = fetch();
    if (this.ttlMs > 0) {
      this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
      value.catch(() => {
        if (this.entries.get(key)?.value === value) this.entries.delete(key);
      });
    }
    return value;
  }
}
