/** Transport: a WebSocket that reconnects with backoff, and the HTTP fallback (bootstrap,
 * event posts, a server-sent-events stream for pushes) when sockets fail or are blocked.
 * Every message reaches the controller through `onMessage`, whichever way it came. */

import { backoffDelay } from "./backoff";
import type { QueuedEvent } from "./queue";
import { isObject } from "./state";

export type Message = { type: string; [field: string]: unknown };

export interface Hello {
  user: { id: string; traits: Record<string, unknown> };
  user_hash?: string;
  page: { url: string; title: string };
  sdk: string;
  session: string;
  /** The browser's language; without it the server reads the request's Accept-Language. */
  locale?: string;
}

export interface TransportHooks {
  onMessage(message: Message): void;
  /** A socket (re)opened or the HTTP fallback bootstrapped: time to flush the outbox. */
  onReady(): void;
}

const SOCKET_TRIES_BEFORE_FALLBACK = 2;
// How messages travel: over the socket, over HTTP (the fallback), or not at all (closed).
const SOCKET = 0;
const HTTP = 1;
const CLOSED = 2;
type Mode = typeof SOCKET | typeof HTTP | typeof CLOSED;
const CONNECT_TIMEOUT_MS = 4000;

export class Transport {
  #mode: Mode = SOCKET;
  #socket?: WebSocket | null;
  #stream?: EventSource | null;
  #attempt = 0;
  #everOpened = false;
  #timer = 0;
  #lastSeq = 0;
  /** The server's `retry_after` (ms) from its last `unavailable`, or the `Retry-After` of its
   * last 429 or 503: the next retry comes no sooner. */
  #retryAfter = 0;
  /** Set while the HTTP fallback waits to retry a failed post of events: nothing is posted. */
  #holding = false;

  readonly #api: string;
  readonly #key: string;
  readonly #hello: () => Hello;
  readonly #hooks: TransportHooks;

  constructor(api: string, key: string, hello: () => Hello, hooks: TransportHooks) {
    this.#api = api;
    this.#key = key;
    this.#hello = hello;
    this.#hooks = hooks;
  }

  start(): void {
    addEventListener("online", this.#reconnectNow);
    // Where WebSocket is missing its constructor throws, and #open falls back to HTTP.
    this.#open();
  }

  /** The last push sequence number applied, so a re-opened stream asks only for newer ones. */
  setSeq(seq: number): void {
    this.#lastSeq = seq;
  }

  readonly #reconnectNow = (): void => {
    if (this.#mode !== SOCKET || this.#socket) return;
    clearTimeout(this.#timer);
    this.#attempt = 0;
    this.#open();
  };

  #open(): void {
    let socket: WebSocket;
    try {
      socket = new WebSocket(
        `${this.#api.replace(/^http/, "ws")}/ws/widget/?key=${encodeURIComponent(this.#key)}`,
      );
    } catch {
      this.#fallback();
      return;
    }
    this.#socket = socket;
    const timeout = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);
    let welcomed = false;
    socket.onopen = () => {
      clearTimeout(timeout);
      socket.send(JSON.stringify({ type: "hello", ...this.#hello() }));
    };
    socket.onmessage = (event) => {
      const message = parse(event.data);
      // A socket closed or replaced since (a reset): what it still delivers is nobody's.
      if (!message || this.#socket !== socket) return;
      this.#hooks.onMessage(message);
      // A socket counts as working once it answers: a proxy that accepts and drops it does not.
      // An error with `retry_after` answers too: `unavailable` (the server's database or Redis
      // is down), `rate_limited` (this socket's or this key's budget is spent), `backlog_full`
      // (too many of this socket's messages wait) or `internal`. Nothing of the refused message
      // was stored. Before the welcome (an `unavailable` closes the socket): no fallback, and no
      // reconnect before its `retry_after`. After it (the socket stays open): no events sent
      // before its `retry_after`, then what was in flight goes out again, as after a failed
      // post. The error names no message: events the server did store come back as duplicates.
      if (message.retry_after) {
        this.#everOpened = true;
        this.#retryAfter = 1000 * (message.retry_after as number) || 0;
        if (welcomed) this.#retryEvents();
      }
      // Events stored: refusals since count afresh, so a tab open for hours, refused now and
      // then, still retries after `retry_after` and not the 30 s the backoff grows to.
      if (message.type === "ack") this.#attempt = 0;
      if (message.type === "welcome") {
        this.#everOpened = welcomed = true;
        this.#attempt = this.#retryAfter = 0;
        this.#hooks.onReady();
      }
    };
    socket.onclose = () => {
      clearTimeout(timeout);
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (this.#mode !== SOCKET) return;
      // A key or origin the server refuses fails the handshake like a blocked socket does:
      // the HTTP fallback's bootstrap then says why (a 401 or 403 `error`, and the end).
      if (!this.#everOpened && ++this.#attempt >= SOCKET_TRIES_BEFORE_FALLBACK) {
        this.#fallback();
      } else {
        this.#timer = setTimeout(() => this.#open(), backoffDelay(this.#attempt++, this.#retryAfter)) as unknown as number;
      }
    };
  }

  /** Send over the socket; false when there is none open (the caller keeps the data). */
  send(message: Message): boolean {
    if (this.#socket?.readyState !== 1) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  /** Events taken from the outbox while a retry is awaited are not sent: they go out with the
   * others in the retry. */
  sendEvents(events: QueuedEvent[]): void {
    if (this.#holding) return;
    if (this.#mode === SOCKET) {
      this.send({ type: "events", events, sent_at: new Date().toISOString() });
    } else if (this.#mode === HTTP) {
      void this.#post("events", this.#batch(events)).then((ack) => {
        if (ack) this.#hooks.onMessage({ ...ack, type: "ack" });
        else if (this.#mode === HTTP) this.#retryEvents();
      });
    }
  }

  /** A post failed, or the socket refused a message with a `retry_after` (the server down or
   * refusing for a while, or the network): no events are sent until the retry, after the
   * backoff and never before the server's Retry-After or `retry_after`. The events stay queued
   * meanwhile; the retry sends them all again (onReady: what was in flight is resent), as after
   * a reconnect. Failures count together (socket reconnects and refusals; the HTTP fallback's
   * bootstrap, stream and posts) until a welcome, an opened stream or an ack on the socket. */
  #retryEvents(): void {
    if (this.#holding) return;
    this.#holding = true;
    setTimeout(() => {
      this.#holding = false;
      if (this.#mode !== CLOSED) this.#hooks.onReady();
    }, backoffDelay(this.#attempt++, this.#retryAfter));
  }

  /** Last-chance delivery when the page is hidden or unloads: `sendBeacon` with a text/plain
   * JSON body (a CORS-safelisted type, so no preflight; the server parses it as JSON), and a
   * keepalive fetch only where the browser refuses the beacon. The ack is never read, so the
   * events stay queued and a later flush resends them (the server answers "duplicate"). */
  beacon(events: QueuedEvent[]): void {
    if (!events.length || this.#mode === CLOSED) return;
    const url = `${this.#api}/api/v1/widget/events`;
    const body = JSON.stringify(this.#batch(events));
    // No beacon (disabled), or over its 64 KB limit: a keepalive fetch has the same cap but
    // may still go through when beacons are disabled.
    navigator.sendBeacon?.(url, body) ||
      fetch(url, { method: "POST", body, keepalive: true }).catch(() => undefined);
  }

  /** Fetch the user's progress over HTTP, e.g. after a sequence gap. */
  progress(): Promise<Message | null> {
    const query = new URLSearchParams(this.#query());
    return this.#request(`progress?${query}`);
  }

  close(): void {
    this.#mode = CLOSED;
    clearTimeout(this.#timer);
    removeEventListener("online", this.#reconnectNow);
    this.#socket?.close();
    this.#socket = null;
    this.#stream?.close();
    this.#stream = null;
  }

  /** A batch of events as the HTTP endpoint takes it: with the key and the user. */
  #batch(events: QueuedEvent[]): Record<string, unknown> {
    const hello = this.#hello();
    return {
      key: this.#key,
      user: { id: hello.user.id },
      user_hash: hello.user_hash,
      events,
      sent_at: new Date().toISOString(),
    };
  }

  #query(): Record<string, string> {
    const hello = this.#hello();
    return { key: this.#key, user: hello.user.id, user_hash: hello.user_hash ?? "" };
  }

  async #fallback(): Promise<void> {
    this.#mode = HTTP;
    const welcome = await this.#post("bootstrap", { ...this.#hello(), key: this.#key });
    if (!welcome || this.#mode !== HTTP) {
      if (this.#mode === HTTP) {
        this.#timer = setTimeout(() => this.#fallback(), backoffDelay(this.#attempt++, this.#retryAfter)) as unknown as number;
      }
      return;
    }
    this.#attempt = 0;
    this.#hooks.onMessage({ ...welcome, type: "welcome" });
    this.#hooks.onReady();
    this.#listen();
  }

  #listen(): void {
    const query = new URLSearchParams({
      ...this.#query(),
      after: String(this.#lastSeq),
      session: this.#hello().session,
    });
    const stream = new EventSource(`${this.#api}/api/v1/widget/stream?${query}`);
    this.#stream = stream;
    const deliver = (event: MessageEvent): void => {
      const message = parse(event.data);
      if (message) this.#hooks.onMessage(message);
    };
    stream.onmessage = deliver;
    for (const type of ["progress", "walkthrough", "content", "message", "error", "resync"]) {
      stream.addEventListener(type, deliver as EventListener);
    }
    stream.onerror = () => {
      // Reopen ourselves (not EventSource's own retry) so `after` names the latest sequence.
      stream.close();
      if (this.#stream !== stream || this.#mode !== HTTP) return;
      this.#stream = null;
      this.#timer = setTimeout(() => {
        this.#hooks.onMessage({ type: "resync" });
        this.#listen();
      }, backoffDelay(this.#attempt++)) as unknown as number;
    };
    stream.onopen = () => {
      this.#attempt = 0;
    };
  }

  /** JSON sent as text/plain (the server parses it as JSON): a CORS-safelisted type, so no
   * preflight round trip before each call. */
  #post(path: string, body: unknown): Promise<Message | null> {
    return this.#request(path, { method: "POST", body: JSON.stringify(body) });
  }

  async #request(path: string, init?: RequestInit): Promise<Message | null> {
    try {
      const response = await fetch(`${this.#api}/api/v1/widget/${path}`, init);
      const message = parse(await response.text());
      if (!response.ok) {
        // A 429 or 503 says in seconds how long to wait (without one, or with a date instead,
        // +null and NaN make it no wait of its own: the backoff alone).
        this.#retryAfter = 1000 * +response.headers.get("Retry-After")! || 0;
        // A key or origin refused (401, 403): no retry will do better.
        if (response.status === 401 || response.status === 403) this.close();
        // Errors arrive as {"error": {code, message}}.
        this.#hooks.onMessage({
          code: String(response.status),
          message: "",
          ...(message?.error as object),
          type: "error",
        });
        return null;
      }
      return message;
    } catch {
      // Unreachable (or a refusal the browser hides, one without CORS): no hint to honour.
      this.#retryAfter = 0;
      return null;
    }
  }
}

function parse(data: unknown): Message | null {
  try {
    const value: unknown = JSON.parse(data as string);
    return isObject(value) ? ({ type: "", ...value } as Message) : null;
  } catch {
    return null;
  }
}
