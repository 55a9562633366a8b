/**
 * The HTTPS piece server of the swarm. Routes (under a prefix, `/pieces` by default):
 *   GET|HEAD <prefix>/<sha256>/<index>  the bytes of one piece (a single `Range: bytes=a-b` within it → 206)
 *   GET      <prefix>/<sha256>          which pieces are held: `{ sha256, pieceCount, have }` (have = base64url bitfield)
 * Every request needs `Authorization: Bearer <ticket>` for that sha256, checked offline against the
 * coordinator's public key; errors are the API's JSON error body. `handlePieceRequest` is framework-free so
 * the coordinator can mount the same logic inside Fastify (`reply.hijack()` then pass `req.raw`, `reply.raw`).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { DEFAULT_CIPHERS } from 'node:tls';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Logger } from '../../logger.ts';
import { ErrorCode, ShoalError, isShoalError } from '../../protocol/errors.ts';
import type { ErrorBody } from '../../protocol/errors.ts';
import { importTicketPublicKey, verifyTicket } from '../../crypto/tickets.ts';
import type { TicketClaims } from '../../crypto/tickets.ts';
import { Bitfield } from '../pieces/bitfield.ts';
import { pieceRange } from '../pieces/piece-map.ts';
import type { PieceSource } from './piece-source.ts';

/** The answer of `GET <prefix>/<sha256>`. */
export interface HaveResponse {
  sha256: string;
  pieceCount: number;
  /** base64url bitfield, most significant bit first. */
  have: string;
  /** base64url of one byte per piece: how many times this holder started sending it (saturating at 255).
   * Downloaders prefer the pieces a holder has sent least, so receivers sharing one sharer ask it for
   * different pieces and trade the rest among themselves. Optional. */
  sent?: string;
}

/** Per-file counts of pieces started, behind `HaveResponse.sent`. */
export interface SendCounter {
  started(sha256: string, index: number, pieceCount: number): void;
  get(sha256: string): Uint8Array | null;
}

/** A SendCounter remembering at most `maxFiles` files (least recently used dropped). */
export function createSendCounter(maxFiles = 256): SendCounter {
  const files = new Map<string, Uint8Array>();
  return {
    started(sha256, index, pieceCount) {
      let c = files.get(sha256);
      if (!c || c.length !== pieceCount) c = new Uint8Array(pieceCount);
      files.delete(sha256);
      files.set(sha256, c);
      if (files.size > maxFiles) files.delete(files.keys().next().value!);
      if (c[index] < 255) c[index]++;
    },
    get(sha256) {
      return files.get(sha256) ?? null;
    },
  };
}

/** One piece answer, reported after it ended (completely or not). */
export interface ServedEvent {
  sha256: string;
  index: number;
  /** Bytes read from disk and handed to the socket, an upper bound of what the peer received. */
  bytes: number;
  user: string;
  /** False when the peer went away before the end. */
  complete: boolean;
  /** The peer's address and port (one per connection, so a downloader's streams are told apart). */
  remote: string;
}

export interface PieceHandlerDeps {
  logger: Logger;
  source: PieceSource;
  /** The coordinator's ticket public key (KeyObject, SPKI PEM or raw base64url). */
  publicKey: KeyObject | string;
  /** Extra check after the ticket (a revoked member, an agent that stopped sharing): false → 403 FORBIDDEN. */
  authorize?: (claims: TicketClaims) => boolean | Promise<boolean>;
  /** Called once per piece answer (upload accounting, tests counting served bytes). */
  onServed?: (e: ServedEvent) => void;
}

export interface PieceHandlerOptions {
  /** Path prefix the routes live under (default `/pieces`). */
  prefix?: string;
  /** Shared upload pacer (see createUploadPacer): caps what all answers together send, bytes/s. */
  pacer?: UploadPacer;
  /** Counts pieces sent per file for the `sent` hint (createPieceServer makes one). */
  sendCounter?: SendCounter;
  /** Clock for ticket expiry, ms since the epoch (tests). */
  now?: () => number;
  /** Tickets whose signature was already checked (createTicketCache): a downloader sends the same ticket
   * with every piece, and an Ed25519 check per piece was a visible share of a holder's CPU. */
  ticketCache?: TicketCache;
  /** Piece buffers reused between unpaced answers (createPieceServer makes one; otherwise streamed). */
  bufferPool?: PieceBufferPool;
}

/** Claims of tickets already verified, by ticket text (expiry and file are still checked on every use). */
export interface TicketCache {
  get(ticket: string): TicketClaims | undefined;
  set(ticket: string, claims: TicketClaims): void;
}

/** A TicketCache holding at most `max` tickets (cleared when full: tickets are few and short-lived). */
export function createTicketCache(max = 1024): TicketCache {
  const m = new Map<string, TicketClaims>();
  return {
    get: (t) => m.get(t),
    set(t, c) {
      if (m.size >= max) m.clear();
      m.set(t, c);
    },
  };
}

/** Reused buffers for unpaced answers, read and sent a chunk (up to 1 MiB) at a time. */
export interface PieceBufferPool {
  /** A buffer of `size` bytes or more, or null when `maxInUse` are out (the answer is then streamed). */
  take(size: number): Buffer | null;
  /** Returns a buffer; `reuse` false when it may still be referenced (a failed answer). */
  give(buf: Buffer, reuse: boolean): void;
}

/** A pool lending at most `maxInUse` buffers at once and keeping `maxIdle` (memory: that many chunks of up to
 * 1 MiB; a holder serving several receivers has 20-30 answers running). */
export function createPieceBufferPool(maxInUse = 64, maxIdle = 64): PieceBufferPool {
  const idle: Buffer[] = [];
  let inUse = 0;
  return {
    take(size) {
      if (inUse >= maxInUse) return null;
      inUse++;
      const i = idle.findIndex((b) => b.length >= size);
      return i >= 0 ? idle.splice(i, 1)[0] : Buffer.allocUnsafeSlow(size);
    },
    give(buf, reuse) {
      inUse--;
      if (reuse && idle.length < maxIdle) idle.push(buf);
    },
  };
}

/** Bytes an unpaced answer reads and writes at a time. */
const answerChunkBytes = 1024 * 1024;

const status: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  TICKET_INVALID: 401,
  TICKET_EXPIRED: 401,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  FILE_NOT_FOUND: 404,
  PIECE_NOT_FOUND: 404,
  NOT_FOUND: 404,
  RANGE_NOT_SATISFIABLE: 416,
};

/**
 * Answers one request if its path is under the prefix; resolves false (and leaves `res` alone) otherwise,
 * so a host server can fall through to its own routes.
 */
export async function handlePieceRequest(
  deps: PieceHandlerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  options: PieceHandlerOptions = {},
): Promise<boolean> {
  const prefix = (options.prefix ?? '/pieces').replace(/\/+$/, '');
  const path = (req.url ?? '').split('?')[0];
  if (path !== prefix && !path.startsWith(`${prefix}/`)) return false;
  const log = deps.logger;
  try {
    const rest = path.slice(prefix.length).split('/').filter((s) => s.length > 0);
    if (rest.length < 1 || rest.length > 2) throw new ShoalError(ErrorCode.NOT_FOUND, 'no such route');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendError(res, 405, ErrorCode.BAD_REQUEST, 'method not allowed');
      return true;
    }
    const sha256 = rest[0];
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'bad sha256');
    const claims = checkTicket(deps, req, sha256, options.now?.() ?? Date.now(), options.ticketCache);
    if (deps.authorize && !(await deps.authorize(claims))) throw new ShoalError(ErrorCode.FORBIDDEN, 'not allowed to fetch this file');
    const held = await deps.source.open(sha256);
    if (!held) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, 'file not held here');
    const count = held.manifest.pieces.length;

    if (rest.length === 1) {
      const bits = (await deps.source.bitfield?.(sha256)) ?? (await buildBitfield(deps.source, sha256, count));
      const sent = options.sendCounter?.get(sha256);
      const body: HaveResponse = { sha256, pieceCount: count, have: bits.toBase64Url(), ...(sent ? { sent: Buffer.from(sent).toString('base64url') } : {}) };
      sendJson(res, 200, body, req.method === 'HEAD');
      return true;
    }

    if (!/^(0|[1-9][0-9]{0,8})$/.test(rest[1])) throw new ShoalError(ErrorCode.BAD_REQUEST, 'bad piece index');
    const index = Number(rest[1]);
    if (index >= count || !(await deps.source.has(sha256, index))) throw new ShoalError(ErrorCode.PIECE_NOT_FOUND, `piece ${index} not held here`);
    const piece = pieceRange(held.manifest, index);
    const range = parseRange(req.headers.range, piece.length);
    const start = piece.offset + range.start;
    const length = range.end - range.start;
    res.statusCode = range.partial ? 206 : 200;
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('content-length', String(length));
    res.setHeader('cache-control', 'no-store');
    if (range.partial) res.setHeader('content-range', `bytes ${range.start}-${range.end - 1}/${piece.length}`);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return true;
    }
    let bytes = 0;
    if (range.start === 0) options.sendCounter?.started(sha256, index, count);
    const pacer = options.pacer;
    const pool = options.bufferPool;
    const buf = !pacer ? pool?.take(answerChunkBytes) : null;
    if (pool && buf) {
      // The piece is read and sent in chunks of one reused buffer, the next read once the socket took the
      // last chunk: few syscalls and no garbage per answer. Streaming allocated a buffer per 256 KiB, and
      // with a receiver serving 20-30 answers at once that garbage kept V8's major GC busy.
      let complete = false;
      let bytes = 0;
      try {
        const fh = await open(held.path, 'r');
        try {
          while (bytes < length) {
            const n = Math.min(buf.length, length - bytes);
            let got = 0;
            while (got < n) {
              const { bytesRead } = await fh.read(buf, got, n - got, start + bytes + got);
              if (bytesRead === 0) throw new ShoalError(ErrorCode.INTERNAL, 'piece shorter on disk than in its manifest');
              got += bytesRead;
            }
            // Every chunk is written alone. The head written with the first chunk, or res.end(chunk) (which
            // adds an empty write), makes one writev of two parts, and TLS copies the parts into one fresh
            // buffer before encrypting: a 1 MiB copy and new pages per answer.
            if (!res.headersSent) res.flushHeaders();
            await new Promise<void>((resolve, reject) => {
              const onClose = () => reject(new Error('peer went away'));
              res.once('close', onClose);
              res.write(buf.subarray(0, n), (err?: Error | null) => {
                res.off('close', onClose);
                if (err) reject(err);
                else resolve();
              });
            });
            bytes += n;
          }
          res.end();
        } finally {
          await fh.close();
        }
        complete = true;
      } catch (err) {
        log.trace('piece answer ended early', { sha256, index, bytes, err });
        if (!res.headersSent) sendError(res, 500, ErrorCode.INTERNAL, 'read failed');
        else res.destroy();
      } finally {
        // The socket owns the bytes once a write called back (TLS encrypted them); an answer that failed
        // may still reference the buffer, so it is not reused.
        pool.give(buf, complete);
        deps.onServed?.({ sha256, index, bytes: complete ? length : bytes, user: claims.user, complete, remote: `${req.socket.remoteAddress}:${req.socket.remotePort}` });
      }
      return true;
    }
    const stream = createReadStream(held.path, { start, end: start + length - 1, highWaterMark: pacer ? 64 * 1024 : 256 * 1024 });
    stream.on('data', (c: string | Buffer) => {
      bytes += c.length;
    });
    let complete = false;
    try {
      if (pacer) {
        await pipeline(
          stream,
          new Transform({
            highWaterMark: 1,
            transform(chunk: Buffer, _enc, done) {
              pacer.take(chunk.length).then(() => done(null, chunk), done);
            },
          }),
          res,
        );
      } else {
        await pipeline(stream, res);
      }
      complete = bytes === length;
    } catch (err) {
      // The peer went away (end game loser, killed downloader): normal, not worth more than a trace.
      log.trace('piece answer ended early', { sha256, index, bytes, err });
      if (!res.headersSent) sendError(res, 500, ErrorCode.INTERNAL, 'read failed');
      else res.destroy();
    } finally {
      deps.onServed?.({ sha256, index, bytes, user: claims.user, complete, remote: `${req.socket.remoteAddress}:${req.socket.remotePort}` });
    }
    return true;
  } catch (err) {
    if (isShoalError(err)) {
      if (err.code === ErrorCode.TICKET_INVALID || err.code === ErrorCode.TICKET_EXPIRED) {
        log.debug('piece request refused', { code: err.code, from: req.socket.remoteAddress });
      }
      if (err.code === ErrorCode.RANGE_NOT_SATISFIABLE && err.details?.size !== undefined) {
        res.setHeader('content-range', `bytes */${String(err.details.size)}`);
      }
      sendError(res, status[err.code] ?? 500, err.code, err.message);
    } else {
      log.error('piece request failed', { err });
      sendError(res, 500, ErrorCode.INTERNAL, 'internal error');
    }
    return true;
  }
}

/** Paces bytes leaving a host: an agent's upload cap ("--max-upload"), shared by every answer. */
export interface UploadPacer {
  /** Resolves when `bytes` may be sent. */
  take(bytes: number): Promise<void>;
}

/** A pacer at `bytesPerSecond`, allowing bursts of `burstBytes` (default 256 KiB). */
export function createUploadPacer(bytesPerSecond: number, burstBytes = 256 * 1024): UploadPacer {
  if (!(bytesPerSecond > 0)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'upload rate must be positive (bytes/s)');
  // Virtual clock of when the link is free again: each chunk books its airtime and waits until the booking
  // is at most one burst ahead of now.
  let freeAt = 0;
  return {
    async take(n) {
      const now = performance.now();
      const start = Math.max(freeAt, now);
      freeAt = start + (n / bytesPerSecond) * 1000;
      const wait = freeAt - now - (burstBytes / bytesPerSecond) * 1000;
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    },
  };
}

export interface PieceServerOptions extends PieceHandlerOptions {
  /** Listen address (default 127.0.0.1) and port (0 = any free one). */
  host?: string;
  port?: number;
  tls: { cert: string | Buffer; key: string | Buffer };
  /** Most simultaneous connections (default 512): each stream of each downloader is one. */
  maxConnections?: number;
  /** Upload cap of this server, bytes/s (ignored when a `pacer` is given). */
  uploadBytesPerSecond?: number;
}

/** A standalone HTTPS piece server. */
export interface PieceServer {
  start(): Promise<{ host: string; port: number; url: string }>;
  stop(): Promise<void>;
  /** Base URL once started (`https://host:port`, the holder URL a downloader is given). */
  readonly url: string;
  readonly port: number;
  [Symbol.asyncDispose](): Promise<void>;
}

// The default order puts AES-256-GCM first; AES-128-GCM is as fit for this and costs about half the CPU per
// byte on AES-NI (measured here: 3.3 against 6.6 ms/MiB), on both ends of every piece. The set is unchanged;
// with TLS 1.3 the server's order decides.
const bulkCiphers = ['TLS_AES_128_GCM_SHA256', ...DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256')].join(':');

/** An HTTPS server answering only the piece routes. */
export function createPieceServer(deps: PieceHandlerDeps, options: PieceServerOptions): PieceServer {
  const log = deps.logger.child('swarm:piece-server');
  const handlerDeps: PieceHandlerDeps = { ...deps, publicKey: importTicketPublicKey(deps.publicKey), logger: log };
  const handlerOptions: PieceHandlerOptions = {
    sendCounter: createSendCounter(),
    ticketCache: createTicketCache(),
    bufferPool: createPieceBufferPool(),
    ...options,
    pacer: options.pacer ?? (options.uploadBytesPerSecond ? createUploadPacer(options.uploadBytesPerSecond) : undefined),
  };
  const server = createServer({ cert: options.tls.cert, key: options.tls.key, ciphers: bulkCiphers }, (req, res) => {
    handlePieceRequest(handlerDeps, req, res, handlerOptions)
      .then((handled) => {
        if (!handled) sendError(res, 404, ErrorCode.NOT_FOUND, 'no such route');
      })
      .catch((err: unknown) => {
        log.error('piece handler crashed', { err });
        res.destroy();
      });
  });
  server.maxConnections = options.maxConnections ?? 512;
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 30_000;
  let port = 0;
  let host = options.host ?? '127.0.0.1';
  let started = false;
  const self: PieceServer = {
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      started = true;
      const addr = server.address() as AddressInfo;
      port = addr.port;
      host = addr.address;
      log.info('piece server listening', { host, port });
      return { host, port, url: self.url };
    },
    async stop() {
      if (!started) return;
      started = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    get url() {
      return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    },
    get port() {
      return port;
    },
    [Symbol.asyncDispose]() {
      return self.stop();
    },
  };
  return self;
}

function checkTicket(deps: PieceHandlerDeps, req: IncomingMessage, sha256: string, now: number, cache?: TicketCache): TicketClaims {
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(auth.trim()) : null;
  if (!m) throw new ShoalError(ErrorCode.TICKET_INVALID, 'a ticket is required (Authorization: Bearer <ticket>)');
  const known = cache?.get(m[1]);
  if (known) {
    // Same checks as verifyTicket after the signature, in the same order.
    if (now >= known.expiresAt) throw new ShoalError(ErrorCode.TICKET_EXPIRED, 'ticket expired', { expiresAt: known.expiresAt });
    if (known.sha256 !== sha256) throw new ShoalError(ErrorCode.TICKET_INVALID, 'ticket refused: issued for another file');
    return known;
  }
  const claims = verifyTicket(deps.publicKey, m[1], { sha256, now });
  cache?.set(m[1], claims);
  return claims;
}

async function buildBitfield(source: PieceSource, sha256: string, count: number): Promise<Bitfield> {
  const b = new Bitfield(count);
  for (let i = 0; i < count; i++) if (await source.has(sha256, i)) b.set(i);
  return b;
}

/** Parses one `bytes=` range against a piece of `size` bytes; several ranges or none → the whole piece. */
function parseRange(header: string | undefined, size: number): { start: number; end: number; partial: boolean } {
  const whole = { start: 0, end: size, partial: false };
  if (!header) return whole;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) {
    if (/^bytes=.*,/.test(header)) return whole;
    throw new ShoalError(ErrorCode.RANGE_NOT_SATISFIABLE, 'bad Range header', { size });
  }
  const [, a, b] = m;
  let start: number;
  let end: number;
  if (a === '' && b === '') throw new ShoalError(ErrorCode.RANGE_NOT_SATISFIABLE, 'bad Range header', { size });
  if (a === '') {
    start = Math.max(0, size - Number(b));
    end = size;
  } else {
    start = Number(a);
    end = b === '' ? size : Math.min(size, Number(b) + 1);
  }
  if (start >= size || end <= start) throw new ShoalError(ErrorCode.RANGE_NOT_SATISFIABLE, 'range outside the piece', { size });
  return { start, end, partial: true };
}

function sendJson(res: ServerResponse, code: number, body: unknown, headOnly = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.statusCode = code;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', String(Buffer.byteLength(text)));
  res.end(headOnly ? undefined : text);
}

function sendError(res: ServerResponse, code: number, errorCode: ErrorCode, message: string): void {
  const body: ErrorBody = { error: { code: errorCode, message } };
  sendJson(res, code, body);
}
