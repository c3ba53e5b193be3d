/** The outbox: events wait in localStorage, with their ids, until the server acknowledges
 * them, so a lost connection or a reload loses nothing and a retry duplicates nothing (the
 * server de-duplicates by id).
 *
 * Several tabs of one user share the same stored list. Every operation re-reads storage
 * before writing, so a tab never overwrites what another appended; two tabs sending the
 * same event is harmless because of the ids. The list is bounded: past `limit` the oldest
 * events are dropped (and counted). When storage is disabled or full the outbox keeps going
 * in memory and says so through `onStorageError`. */

export interface QueuedEvent {
  id: string;
  name: string;
  timestamp: string;
  properties: Record<string, unknown>;
}

export interface OutboxOptions {
  /** How many events the outbox holds at most (500). */
  limit?: number;
  /** How long a sent batch waits for its ack before it may be sent again (10 s). */
  resendAfterMs?: number;
  now?: () => number;
  onStorageError?: (error: unknown) => void;
  /** Told how many of the oldest events were dropped to stay within the limit. */
  onOverflow?: (dropped: number) => void;
}

export class Outbox {
  #memory: QueuedEvent[] = [];
  #inFlight = new Map<string, number>();
  #storage: Storage | null;
  readonly #storageKey: string;
  readonly #options: OutboxOptions;

  constructor(storage: Storage | null, storageKey: string, options: OutboxOptions = {}) {
    this.#storage = storage;
    this.#storageKey = storageKey;
    this.#options = options;
  }

  #read(): QueuedEvent[] {
    if (!this.#storage) return this.#memory;
    try {
      const parsed: unknown = JSON.parse(this.#storage.getItem(this.#storageKey) || "[]");
      return Array.isArray(parsed) ? (parsed as QueuedEvent[]).filter((e) => e && e.id) : [];
    } catch (error) {
      this.#fail(error);
      return this.#memory;
    }
  }

  #write(events: QueuedEvent[]): void {
    this.#memory = events;
    if (!this.#storage) return;
    try {
      if (events.length) this.#storage.setItem(this.#storageKey, JSON.stringify(events));
      else this.#storage.removeItem(this.#storageKey);
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    // From now on this tab keeps its events in memory; they still reach the server.
    this.#storage = null;
    this.#options.onStorageError?.(error);
  }

  add(event: QueuedEvent): void {
    const events = this.#read();
    events.push(event);
    const excess = events.length - (this.#options.limit ?? 500);
    if (excess > 0) events.splice(0, excess);
    this.#write(events);
    if (excess > 0) this.#options.onOverflow?.(excess);
  }

  /** Up to `max` events not already awaiting an ack from this tab; marks them in flight. */
  take(max = 100): QueuedEvent[] {
    const options = this.#options;
    const now = (options.now ?? Date.now)();
    const batch = this.#read()
      .filter((e) => (this.#inFlight.get(e.id) ?? -Infinity) + (options.resendAfterMs ?? 10000) <= now)
      .slice(0, max);
    for (const e of batch) this.#inFlight.set(e.id, now);
    return batch;
  }

  /** Every event still waiting, for a last-chance send when the page is hidden. */
  all(): QueuedEvent[] {
    return this.#read();
  }

  /** Forget in-flight marks, e.g. after a disconnect, so the next flush resends at once. */
  retryAll(): void {
    this.#inFlight.clear();
  }

  /** The server answered for these ids (accepted, duplicate or rejected): drop them. */
  ack(ids: string[]): void {
    if (!ids.length) return;
    const done = new Set(ids);
    for (const id of ids) this.#inFlight.delete(id);
    this.#write(this.#read().filter((e) => !done.has(e.id)));
  }
}

/** A random (v4) UUID; works outside secure contexts, where crypto.randomUUID is missing. */
export function uuid(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  // Two hex digits a byte (256 + b keeps the leading zero), dashed as 8-4-4-4-12.
  const hex = Array.from(bytes, (b) => (256 + b).toString(16).slice(1)).join("");
  return hex.replace(/(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
}
