/**
 * HTTPS connections to a holder pinned by certificate fingerprint. Holders (agents, the coordinator) use
 * self-signed certificates, so trust is "this SHA-256 fingerprint", checked on the TLS handshake before any
 * request byte (the ticket included) is sent.
 */
import { Agent, buildConnector } from 'undici';
import type { TLSSocket } from 'node:tls';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';

/** `AB:CD:…` upper-case, as node:tls reports `fingerprint256`; accepts colons or not, any case. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/^sha256[:/ ]?/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'a certificate fingerprint is 32 bytes of hex (SHA-256)');
  return hex.match(/../g)!.join(':');
}

/** TLS_FINGERPRINT_MISMATCH when the peer of a connected TLS socket is not the pinned certificate (`pin` as
 * normalizeFingerprint gives it), else null. */
export function pinMismatch(socket: TLSSocket, pin: string): ShoalError | null {
  const seen = socket.getPeerCertificate?.()?.fingerprint256;
  if (seen && seen.toUpperCase() === pin) return null;
  return new ShoalError(ErrorCode.TLS_FINGERPRINT_MISMATCH, `holder certificate ${seen ?? '(none)'} is not the pinned ${pin}`);
}

export interface PinnedDispatcherOptions {
  /** SHA-256 fingerprint of the holder's certificate; null/undefined = ordinary CA verification (`ca` or system). */
  fingerprint?: string | null;
  /** Extra CA certificates when not pinning. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Most parallel connections (streams) to one origin. */
  connections: number;
  /** ms to establish a connection (TCP + TLS). */
  connectTimeoutMs?: number;
  /** ms of silence (before the headers, or between body chunks) before a request fails (default 30 s). */
  idleTimeoutMs?: number;
}

/** An undici dispatcher whose TLS connections fail with TLS_FINGERPRINT_MISMATCH unless the peer is the pinned one. */
export function createPinnedDispatcher(options: PinnedDispatcherOptions): Agent {
  const pin = options.fingerprint ? normalizeFingerprint(options.fingerprint) : null;
  const timeout = options.connectTimeoutMs ?? 10_000;
  // No session resumption when pinning: a resumed TLS session does not present the certificate again, so
  // there would be no fingerprint to check.
  const base = pin
    ? buildConnector({ rejectUnauthorized: false, timeout, maxCachedSessions: 0 })
    : buildConnector({ ca: options.ca, timeout });
  const connect: buildConnector.connector = (opts, callback) => {
    base(opts, (err, socket) => {
      if (err || !socket) {
        callback(err ?? new Error('connect failed'), null);
        return;
      }
      const wrong = pin ? pinMismatch(socket as TLSSocket, pin) : null;
      if (wrong) {
        socket.destroy();
        callback(wrong, null);
        return;
      }
      callback(null, socket);
    });
  };
  return new Agent({
    connect,
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.idleTimeoutMs ?? 30_000,
    bodyTimeout: options.idleTimeoutMs ?? 30_000,
  });
}
