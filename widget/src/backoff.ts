/** Reconnect delays: exponential growth with "equal jitter", so a server restart is not met by
 * every tab reconnecting in the same instant, and no delay is ever shorter than half its step. */
export function backoffDelay(
  attempt: number,
  random: () => number = Math.random,
  base = 500,
  max = 30000,
): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, Math.min(attempt, 20)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
