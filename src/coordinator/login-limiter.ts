/**
 * Failed-login limiter: counts failures per username and per client address in a sliding window and
 * refuses further attempts with RATE_LIMITED (429 + Retry-After) once a key is over its budget.
 * Successes are not counted. In memory, per coordinator process, bounded in size.
 */
import { ErrorCode, ShoalError } from '../protocol/errors.ts';

export interface LoginLimiterOptions {
  /** Failures allowed per username within the window. */
  perUser?: number;
  /** Failures allowed per client address within the window. */
  perAddress?: number;
  /** Window length, ms. */
  windowMs?: number;
  /** Most keys remembered; the oldest are forgotten first. */
  maxKeys?: number;
}

export interface LoginLimiter {
  /** Throws ShoalError(RATE_LIMITED, …, { retryAfterS }) when either key is over budget at `now` (epoch ms). */
  check(username: string, address: string, now?: number): void;
  /** Records one failed attempt. */
  fail(username: string, address: string, now?: number): void;
}

/** Creates a limiter (defaults: 5 failures per user and 20 per address per minute). */
export function createLoginLimiter(options: LoginLimiterOptions = {}): LoginLimiter {
  const perUser = options.perUser ?? 5;
  const perAddress = options.perAddress ?? 20;
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 100_000;
  const failures = new Map<string, number[]>();

  const recent = (key: string, now: number): number[] => {
    const list = failures.get(key);
    if (!list) return [];
    const kept = list.filter((t) => t > now - windowMs);
    if (kept.length === 0) failures.delete(key);
    else failures.set(key, kept);
    return kept;
  };
  const over = (key: string, budget: number, now: number): number | undefined => {
    const list = recent(key, now);
    if (list.length < budget) return undefined;
    // Allowed again once the oldest failure that keeps us at the budget leaves the window.
    const oldest = list[list.length - budget];
    return Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
  };
  const userKey = (u: string) => `u:${u.toLowerCase()}`;
  const addrKey = (a: string) => `a:${a}`;

  return {
    check(username, address, now = Date.now()) {
      const wait = Math.max(
        over(userKey(username), perUser, now) ?? 0,
        over(addrKey(address), perAddress, now) ?? 0,
      );
      if (wait > 0) {
        throw new ShoalError(ErrorCode.RATE_LIMITED, `too many failed logins; retry in ${wait} s`, {
          retryAfterS: wait,
        });
      }
    },
    fail(username, address, now = Date.now()) {
      for (const key of [userKey(username), addrKey(address)]) {
        const list = recent(key, now);
        list.push(now);
        failures.delete(key); // re-insert so Map order is least-recently-failed first
        failures.set(key, list.slice(-Math.max(perUser, perAddress)));
      }
      while (failures.size > maxKeys) {
        const first = failures.keys().next().value;
        if (first === undefined) break;
        failures.delete(first);
      }
    },
  };
}
