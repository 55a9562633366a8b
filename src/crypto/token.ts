/**
 * Session tokens: 32 random bytes, base64url, handed to the client once. Only their SHA-256 (hex) is
 * stored, so a leaked database does not yield usable sessions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Limits } from '../protocol/limits.ts';

/** A new session token: the secret for the client, the hash to store, and its expiry (epoch ms). */
export interface NewToken {
  token: string;
  tokenHash: string;
  createdAt: number;
  expiresAt: number;
}

/** The stored form of a token: lower-case hex SHA-256 of its UTF-8 text. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a random 32-byte token valid for `ttlMs` (default Limits.sessionTtlMs) from `now` (epoch ms). */
export function createToken(now: number = Date.now(), ttlMs: number = Limits.sessionTtlMs): NewToken {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenHash: hashToken(token), createdAt: now, expiresAt: now + ttlMs };
}

/** True when `token` has the shape createToken produces (43 base64url characters). */
export function isWellFormedToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}
