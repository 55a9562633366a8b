/**
 * Node-only transport for the typed client: HTTPS and WebSocket connections that pin the coordinator's
 * certificate by its SHA-256 fingerprint. The coordinator usually runs on a self-signed certificate, so the
 * usual CA check cannot help; instead the peer certificate's fingerprint is compared on 'secureConnect',
 * before a single request byte (and so before the bearer token) is written to the socket.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Agent, fetch as undiciFetch, type buildConnector } from 'undici';
import WebSocket from 'ws';
import type { ClientRequestArgs } from 'node:http';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import type { FetchLike } from './api-client.ts';
import { apiPrefix } from './api-client.ts';

/** Default time to set up a TCP+TLS connection, in ms. */
export const connectTimeoutMs = 15_000;

/** Lower-case hex of a SHA-256 fingerprint given as `AB:CD:…`, `abcd…` or `SHA256:AB:CD…`; throws on anything else. */
export function normalizeFingerprint(fingerprint: string): string {
  const hex = fingerprint
    .trim()
    .replace(/^sha-?256[:=]?/i, '')
    .replace(/[:\s]/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new ShoalError(
      ErrorCode.BAD_REQUEST,
      `not a SHA-256 fingerprint: "${fingerprint}" (expected 32 hex bytes, e.g. AB:CD:…)`,
    );
  }
  return hex;
}

/** A fingerprint in the form Node and OpenSSL print it: upper-case hex pairs joined by colons. */
export function formatFingerprint(fingerprint: string): string {
  return normalizeFingerprint(fingerprint).toUpperCase().match(/../g)!.join(':');
}

/** True when two fingerprints, in any accepted notation, name the same certificate. */
export function sameFingerprint(a: string, b: string): boolean {
  return normalizeFingerprint(a) === normalizeFingerprint(b);
}

function mismatch(host: string, expected: string, got: string | undefined): ShoalError {
  return new ShoalError(
    ErrorCode.TLS_FINGERPRINT_MISMATCH,
    `the certificate of ${host} does not match the pinned fingerprint (expected ${formatFingerprint(expected)}, got ${got ? formatFingerprint(got) : 'none'})`,
    { host, expected: formatFingerprint(expected), actual: got ? formatFingerprint(got) : null },
  );
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

interface PinnedConnectOptions {
  host: string;
  port: number;
  servername?: string;
  fingerprint: string;
  timeoutMs?: number;
  alpn?: string[];
}

/**
 * Opens a TLS connection and calls back with the socket only once the peer certificate's SHA-256 matches
 * `fingerprint`; on mismatch the socket is destroyed and the callback gets TLS_FINGERPRINT_MISMATCH.
 */
export function connectPinned(
  opts: PinnedConnectOptions,
  callback: (err: Error | null, socket: tls.TLSSocket | null) => void,
): void {
  const expected = normalizeFingerprint(opts.fingerprint);
  const host = stripBrackets(opts.host);
  let done = false;
  const finish = (err: Error | null, socket: tls.TLSSocket | null) => {
    if (done) return;
    done = true;
    callback(err, socket);
  };
  const socket = tls.connect({
    host,
    port: opts.port,
    // SNI must not carry an IP address (RFC 6066 §3).
    servername: opts.servername ?? (net.isIP(host) ? undefined : host),
    // The CA check cannot vouch for a self-signed certificate; the fingerprint check below replaces it.
    rejectUnauthorized: false,
    ALPNProtocols: opts.alpn ?? ['http/1.1'],
  });
  const timer = setTimeout(() => {
    socket.destroy();
    finish(new ShoalError(ErrorCode.UNREACHABLE, `connecting to ${host}:${opts.port} timed out`), null);
  }, opts.timeoutMs ?? connectTimeoutMs);
  socket.once('secureConnect', () => {
    clearTimeout(timer);
    const got = socket.getPeerCertificate()?.fingerprint256;
    if (!got || normalizeFingerprint(got) !== expected) {
      const err = mismatch(`${host}:${opts.port}`, expected, got);
      socket.destroy();
      finish(err, null);
      return;
    }
    socket.removeListener('error', onError);
    finish(null, socket);
  });
  const onError = (err: Error) => {
    clearTimeout(timer);
    finish(err, null);
  };
  socket.once('error', onError);
}

/** An undici connector that pins `fingerprint` on TLS and connects plainly for http: URLs. */
function pinnedConnector(fingerprint: string, timeoutMs?: number): buildConnector.connector {
  return (options, callback) => {
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    if (options.protocol !== 'https:') {
      const sock = net.connect({ host: stripBrackets(options.hostname), port });
      sock.once('connect', () => callback(null, sock));
      sock.once('error', (err) => callback(err, null));
      return;
    }
    connectPinned(
      { host: options.hostname, port, servername: options.servername || undefined, fingerprint, timeoutMs },
      (err, socket) => (err ? callback(err, null) : callback(null, socket!)),
    );
  };
}

export interface NodeFetchOptions {
  /** SHA-256 fingerprint of the coordinator's certificate; without it the system CAs are trusted. */
  fingerprint?: string;
  /** Connect timeout in ms. */
  connectTimeoutMs?: number;
}

/** A fetch whose connections pin the given certificate fingerprint. `close()` frees its connection pool. */
export interface NodeFetch extends FetchLike {
  close(): Promise<void>;
}

/** Builds a fetch for the typed client (Node only), pinning `fingerprint` when given. */
export function createNodeFetch(options: NodeFetchOptions = {}): NodeFetch {
  const agent = options.fingerprint
    ? new Agent({ connect: pinnedConnector(options.fingerprint, options.connectTimeoutMs) })
    : new Agent({ connect: { timeout: options.connectTimeoutMs ?? connectTimeoutMs } });
  const f = ((input: string, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent } as Parameters<
      typeof undiciFetch
    >[1]) as unknown as Promise<Response>) as NodeFetch;
  f.close = () => agent.close();
  return f;
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Give up after this many ms. */
  timeoutMs?: number;
}

/** What a first contact learns about a TLS server: its certificate fingerprint and whether a CA vouches for it. */
export interface ProbeResult {
  /** SHA-256 fingerprint, `AB:CD:…`. */
  fingerprint: string;
  /** True when the system CAs accept the certificate for this host name. */
  authorized: boolean;
  /** The certificate's subject common name and validity end, for display. */
  subject?: string;
  validTo?: string;
}

/** Connects to an https URL without sending anything and reports its certificate (trust on first use). */
export function probeFingerprint(url: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const u = new URL(url);
  if (u.protocol !== 'https:') {
    return Promise.reject(
      new ShoalError(ErrorCode.BAD_REQUEST, `the coordinator URL must use https: ${url}`),
    );
  }
  const host = stripBrackets(u.hostname);
  const port = Number(u.port) || 443;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      servername: net.isIP(host) ? undefined : host,
      rejectUnauthorized: false,
    });
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(
        err instanceof ShoalError
          ? err
          : new ShoalError(
              ErrorCode.UNREACHABLE,
              `cannot reach ${u.host}: ${(err as { code?: string }).code ?? err.message}`,
              { url },
              { cause: err },
            ),
      );
    };
    const timer = setTimeout(
      () => fail(new ShoalError(ErrorCode.UNREACHABLE, `connecting to ${u.host} timed out`, { url })),
      opts.timeoutMs ?? connectTimeoutMs,
    );
    const onAbort = () => fail(new ShoalError(ErrorCode.ABORTED, 'probe aborted', { url }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      cleanup();
      const cert = socket.getPeerCertificate();
      const authorized = socket.authorized;
      socket.removeListener('error', fail);
      socket.on('error', () => undefined);
      socket.end();
      if (!cert?.fingerprint256) {
        reject(
          new ShoalError(ErrorCode.TLS_FINGERPRINT_MISMATCH, `${u.host} presented no certificate`, { url }),
        );
        return;
      }
      resolve({
        fingerprint: formatFingerprint(cert.fingerprint256),
        authorized,
        subject: typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined,
        validTo: cert.valid_to,
      });
    });
  });
}

/** The WebSocket URL of the coordinator's event stream (`wss://host:port/api/v1/events`). */
export function eventsUrl(baseUrl: string): string {
  const u = new URL(baseUrl.replace(/\/+$/, '') + apiPrefix + '/events');
  u.protocol = u.protocol === 'http:' ? 'ws:' : 'wss:';
  return u.toString();
}

export interface NodeWebSocketOptions {
  /** SHA-256 fingerprint to pin; without it the system CAs are trusted. */
  fingerprint?: string;
  /** Bearer token, sent in the Authorization header of the upgrade request. */
  token?: string;
  /** Largest message accepted, in bytes. */
  maxPayload?: number;
  /** Connect/handshake timeout in ms. */
  handshakeTimeoutMs?: number;
}

/**
 * Opens a WebSocket (the `ws` package) to `url`, pinning the certificate like createNodeFetch: the upgrade
 * request, which carries the token, is written only after the fingerprint matched.
 */
export function createNodeWebSocket(url: string, options: NodeWebSocketOptions = {}): WebSocket {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const wsOptions: WebSocket.ClientOptions = {
    headers,
    maxPayload: options.maxPayload,
    handshakeTimeout: options.handshakeTimeoutMs ?? connectTimeoutMs,
  };
  const fingerprint = options.fingerprint;
  if (fingerprint && url.startsWith('wss:')) {
    // http.request accepts an asynchronous createConnection (callback form) and waits for the socket.
    (wsOptions as { createConnection?: unknown }).createConnection = (
      args: ClientRequestArgs & { servername?: string },
      cb: (err: Error | null, socket?: net.Socket) => void,
    ) => {
      connectPinned(
        {
          host: String(args.host ?? args.hostname ?? 'localhost'),
          port: Number(args.port) || 443,
          servername: args.servername || undefined,
          fingerprint,
          timeoutMs: options.handshakeTimeoutMs,
        },
        (err, socket) => (err ? cb(err) : cb(null, socket!)),
      );
      return undefined;
    };
  }
  return new WebSocket(url, wsOptions);
}
