/** Reconnect delays: exponential growth with "equal jitter", so a server restart is not met by
 * every tab reconnecting in the same instant, and no delay is ever shorter than half its step.
 * `atLeast` (ms) is the server's own `retry_after`: the delay is then never shorter than it,
 * and spread up to twice it so that thousands of tabs told the same do not return together. */
export function backoffDelay(attempt: number, atLeast = 0, random = Math.random): number {
  // 2 ** attempt may reach Infinity; the 30 s ceiling still holds.
  const step = Math.max(Math.min(30000, 500 * 2 ** attempt), 2 * atLeast);
  return Math.round((step * (1 + random())) / 2);
}
