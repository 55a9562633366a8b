/**
 * Piece-access tickets: short-lived tokens the coordinator signs with Ed25519, naming a user, a file (by its
 * content SHA-256) and an expiry. Piece servers (agents, the coordinator) check them offline with the
 * coordinator's public key. Wire form: base64url(JSON claims) + '.' + base64url(signature over the first part).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';

/** What a ticket grants: `user` may fetch pieces of the file whose content hash is `sha256` until `expiresAt`. */
export interface TicketClaims {
  user: string;
  /** Hex SHA-256 of the whole file. */
  sha256: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
  /** Issue time, ms since the epoch. */
  issuedAt: number;
}

export interface TicketKeys {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** Longest ticket string accepted, in characters; checked before any parsing. */
export const maxTicketChars = 1024;

/** A fresh Ed25519 key pair for signing tickets. */
export function generateTicketKeys(): TicketKeys {
  return generateKeyPairSync('ed25519');
}

/** PEM texts of a key pair (PKCS#8 private, SPKI public), for the coordinator's data directory. */
export function exportTicketKeys(keys: TicketKeys): { privateKeyPem: string; publicKeyPem: string } {
  return {
    privateKeyPem: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: keys.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

/** Loads a key pair from a PKCS#8 PEM private key (the public key is derived from it). */
export function importTicketKeys(privateKeyPem: string): TicketKeys {
  const privateKey = createPrivateKey(privateKeyPem);
  assertEd25519(privateKey);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The 32 raw bytes of an Ed25519 public key, base64url: compact enough for a WebSocket hello or a config. */
export function publicKeyToRaw(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new ShoalError(ErrorCode.BAD_REQUEST, 'not an Ed25519 public key');
  return jwk.x;
}

/** A public key from SPKI PEM text, from `publicKeyToRaw` output, or a KeyObject (returned as is). */
export function importTicketPublicKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') return key;
  const k = key.includes('-----BEGIN')
    ? createPublicKey(key)
    : createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.trim() }, format: 'jwk' });
  assertEd25519(k);
  return k;
}

/** Signs a ticket; `expiresAt` in ms since the epoch. */
export function signTicket(privateKey: KeyObject | string, claims: { user: string; sha256: string; expiresAt: number; issuedAt?: number }): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  assertEd25519(key);
  if (!/^[0-9a-f]{64}$/.test(claims.sha256)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'ticket sha256 must be 64 lower-case hex digits');
  if (!Number.isSafeInteger(claims.expiresAt)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'ticket expiresAt must be an integer (ms)');
  const body: WireClaims = { v: 1, u: claims.user, h: claims.sha256, exp: claims.expiresAt, iat: claims.issuedAt ?? Date.now() };
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  const sig = sign(null, Buffer.from(payload, 'latin1'), key).toString('base64url');
  return `${payload}.${sig}`;
}

/**
 * Checks a ticket for the file `sha256` at time `now` (ms, default Date.now()). Returns its claims, or throws
 * TICKET_INVALID (malformed, bad signature, other file) or TICKET_EXPIRED.
 */
export function verifyTicket(publicKey: KeyObject | string, ticket: string, expect: { sha256: string; now?: number }): TicketClaims {
  const invalid = (why: string): never => {
    throw new ShoalError(ErrorCode.TICKET_INVALID, `ticket refused: ${why}`);
  };
  if (typeof ticket !== 'string' || ticket.length === 0 || ticket.length > maxTicketChars) invalid('missing or too long');
  const parts = ticket.split('.');
  if (parts.length !== 2 || !/^[A-Za-z0-9_-]+$/.test(parts[0]) || !/^[A-Za-z0-9_-]+$/.test(parts[1])) invalid('malformed');
  const [payload, sigText] = parts;
  const sig = Buffer.from(sigText, 'base64url');
  if (sig.length !== 64) invalid('malformed signature');
  const key = importTicketPublicKey(publicKey);
  let good = false;
  try {
    good = verify(null, Buffer.from(payload, 'latin1'), key, sig);
  } catch {
    good = false;
  }
  if (!good) invalid('bad signature');
  let body: WireClaims;
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as WireClaims;
  } catch {
    return invalid('malformed claims');
  }
  if (
    !body || body.v !== 1 || typeof body.u !== 'string' || typeof body.h !== 'string' ||
    !Number.isSafeInteger(body.exp) || !Number.isSafeInteger(body.iat)
  ) {
    invalid('malformed claims');
  }
  if ((expect.now ?? Date.now()) >= body.exp) {
    throw new ShoalError(ErrorCode.TICKET_EXPIRED, 'ticket expired', { expiresAt: body.exp });
  }
  if (body.h !== expect.sha256) invalid('issued for another file');
  return { user: body.u, sha256: body.h, expiresAt: body.exp, issuedAt: body.iat };
}

interface WireClaims {
  v: 1;
  u: string;
  h: string;
  exp: number;
  iat: number;
}

function assertEd25519(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ed25519') throw new ShoalError(ErrorCode.BAD_REQUEST, 'ticket keys must be Ed25519');
}
