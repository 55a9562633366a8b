/**
 * A small HTTPS/1.1 client for piece bodies, one per holder: keep-alive connections (at most `connections`),
 * the holder's certificate pinned by fingerprint like createPinnedDispatcher, and bodies copied straight from
 * the TLS layer into the caller's buffer or handed to its sink. Node's `onread` option hands every decrypted
 * record to one reused buffer, so a 4 MiB piece costs no allocation, no stream and no parser run per record; through
 * undici each record was a new Buffer, a socket stream event and a WASM parser call, and on the swarm bed
 * (receivers CPU-bound) that garbage kept V8's major GC busy. Only what the piece routes answer is
 * understood: a status line, headers, a `content-length` body (or a body until close); anything else
 * (chunked encoding, a head over 16 KiB) fails the request with PEER_FAILED.
 */
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import { normalizeFingerprint, pinMismatch } from './pinned-dispatcher.ts';

export interface PieceClientOptions {
  /** Base URL of the holder (https). */
  url: string;
  /** SHA-256 fingerprint of the holder's certificate; null/undefined = ordinary CA verification (`ca` or system). */
  fingerprint?: string | null;
  /** Extra CA certificates when not pinning. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Most parallel connections; requests beyond wait for a free one. */
  connections: number;
  /** ms to establish a connection (TCP + TLS), default 10 s. */
  connectTimeoutMs?: number;
  /** ms of silence (before the head, or between body bytes) before a request fails (default 30 s). */
  idleTimeoutMs?: number;
  /** ms an unused connection is kept (default 10 s, below the piece server's 30 s keep-alive). */
  keepAliveMs?: number;
}

/** Where a 200 body goes part by part, in order, as it is decrypted. */
export interface BodySink {
  /** Most bytes the body may have. */
  readonly length: number;
  /** `bytes` is a view of the client's read buffer, valid only during the call; `at` = body bytes before it. */
  write(bytes: Uint8Array, at: number): void;
}

/** What one GET brought back. */
export interface PieceClientResponse {
  status: number;
  /** Body bytes written into `into` (status 200 with a buffer only). */
  length: number;
  /** Any other body as text (at most 64 KiB kept). */
  text: string;
}

export interface PieceClient {
  /**
   * GET `path` (under the base URL's path). A 200 body goes into `into`, a buffer or a sink (`onData(n)` after
   * every part); a longer one fails with HASH_MISMATCH (a holder sending more than a piece holds). Without `into`
   * (a bitfield) the 200 body comes back as `text` like any other. Rejects with the signal's reason when it fires
   * (the connection is closed: HTTP/1.1 cannot cancel a running answer), and with whatever the sink throws.
   */
  get(path: string, headers: Record<string, string>, into: Buffer | BodySink | null, onData: (n: number) => void, signal: AbortSignal): Promise<PieceClientResponse>;
  /** Closes every connection; requests still running fail. */
  close(): void;
}

const maxHead = 16 * 1024;
const maxText = 64 * 1024;
const readBufferBytes = 64 * 1024;

interface Job {
  path: string;
  headers: Record<string, string>;
  into: Buffer | BodySink | null;
  onData: (n: number) => void;
  signal: AbortSignal;
  resolve: (r: PieceClientResponse) => void;
  reject: (err: unknown) => void;
  /** Sent once already on a reused connection that closed before answering. */
  retried: boolean;
}

interface Conn {
  socket: TLSSocket;
  ready: boolean;
  job: Job | null;
  /** Any byte of the current answer arrived (a reused connection closing before that is retried). */
  answered: boolean;
  reused: boolean;
  idleTimer: NodeJS.Timeout | null;
  // Parser state of the current answer.
  head: Buffer[];
  headBytes: number;
  status: number;
  /** Body bytes expected; -1 = until the connection closes. */
  expect: number;
  got: number;
  inBody: boolean;
  keepAlive: boolean;
  text: Buffer[];
  textBytes: number;
}

/** A client for the holder at `options.url`; throws BAD_REQUEST on a URL that is not https or a bad fingerprint. */
export function createPieceClient(options: PieceClientOptions): PieceClient {
  const base = new URL(options.url);
  if (base.protocol !== 'https:') throw new ShoalError(ErrorCode.BAD_REQUEST, `holder URL must be https: ${options.url}`);
  const pin = options.fingerprint ? normalizeFingerprint(options.fingerprint) : null;
  const host = base.hostname.replace(/^\[|\]$/g, '');
  const port = Number(base.port || 443);
  const prefix = base.pathname.replace(/\/+$/, '');
  const hostHeader = base.host;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const keepAliveMs = options.keepAliveMs ?? 10_000;
  const maxConns = Math.max(1, options.connections);
  const conns = new Set<Conn>();
  const idle: Conn[] = [];
  const queue: Job[] = [];
  let closed = false;

  const finishJob = (c: Conn, err: unknown, value?: PieceClientResponse) => {
    const job = c.job;
    if (!job) return;
    c.job = null;
    job.signal.removeEventListener('abort', onAbortOf(job));
    if (err) job.reject(err);
    else job.resolve(value!);
  };

  const aborters = new WeakMap<Job, () => void>();
  const onAbortOf = (job: Job) => aborters.get(job) ?? (() => undefined);

  const drop = (c: Conn, err: unknown) => {
    if (!conns.delete(c)) return;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.socket.destroy();
    const job = c.job;
    if (job) {
      if (c.reused && !c.answered && !job.retried && !job.signal.aborted && !closed) {
        // The holder closed a kept-alive connection as we reused it: ask again on a fresh one.
        c.job = null;
        job.retried = true;
        queue.unshift(job);
      } else {
        finishJob(c, err);
      }
    }
    pump();
  };

  const failure = (msg: string, code: ErrorCode = ErrorCode.PEER_FAILED) => new ShoalError(code, msg);

  const onRead = (c: Conn, n: number, buf: Buffer) => {
    const job = c.job;
    if (!job) {
      drop(c, failure('holder sent bytes nobody asked for'));
      return;
    }
    c.answered = true;
    if (!c.inBody) {
      c.head.push(Buffer.from(buf.subarray(0, n)));
      c.headBytes += n;
      const all = c.head.length === 1 ? c.head[0] : Buffer.concat(c.head);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (c.headBytes > maxHead) drop(c, failure('holder answer head too long'));
        return;
      }
      c.head = [];
      c.headBytes = 0;
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]);
      if (!m) {
        drop(c, failure('holder answer is not HTTP/1.x'));
        return;
      }
      c.status = Number(m[2]);
      c.keepAlive = m[1] === '1';
      c.expect = -1;
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        if (colon <= 0) continue;
        const name = lines[i].slice(0, colon).trim().toLowerCase();
        const value = lines[i].slice(colon + 1).trim();
        if (name === 'content-length') {
          if (!/^\d{1,15}$/.test(value)) {
            drop(c, failure('holder sent a bad content-length'));
            return;
          }
          c.expect = Number(value);
        } else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') {
          drop(c, failure(`holder answer uses ${value} transfer encoding`));
          return;
        } else if (name === 'connection') {
          if (/\bclose\b/i.test(value)) c.keepAlive = false;
          else if (/\bkeep-alive\b/i.test(value)) c.keepAlive = true;
        }
      }
      if (c.status >= 100 && c.status < 200) {
        // Informational: the real answer follows.
        const rest = all.subarray(end + 4);
        if (rest.length > 0) onRead(c, rest.length, Buffer.from(rest));
        return;
      }
      if (c.expect < 0) c.keepAlive = false;
      if (c.status === 200 && job.into && c.expect > job.into.length) {
        drop(c, failure(`holder announced ${c.expect} bytes for a ${job.into.length}-byte piece`, ErrorCode.HASH_MISMATCH));
        return;
      }
      c.inBody = true;
      c.got = 0;
      c.text = [];
      c.textBytes = 0;
      const rest = all.subarray(end + 4);
      if (rest.length > 0) body(c, job, rest, 0, rest.length);
      else maybeDone(c, job);
      return;
    }
    body(c, job, buf, 0, n);
  };

  const body = (c: Conn, job: Job, buf: Buffer, from: number, to: number) => {
    let n = to - from;
    if (c.expect >= 0 && c.got + n > c.expect) {
      // Bytes past the answer: nothing else was asked on this connection (no pipelining).
      drop(c, failure('holder sent more than it announced'));
      return;
    }
    if (c.status === 200 && job.into) {
      if (c.got + n > job.into.length) {
        drop(c, failure(`holder sent more than ${job.into.length} bytes`, ErrorCode.HASH_MISMATCH));
        return;
      }
      const part = n === buf.length && from === 0 ? buf : buf.subarray(from, to);
      if (Buffer.isBuffer(job.into)) job.into.set(part, c.got);
      else {
        try {
          job.into.write(part, c.got);
        } catch (err) {
          drop(c, err);
          return;
        }
      }
      c.got += n;
      job.onData(n);
    } else {
      if (c.textBytes + n > maxText) n = Math.max(0, maxText - c.textBytes);
      if (n > 0) c.text.push(Buffer.from(buf.subarray(from, from + n)));
      c.textBytes += n;
      c.got += to - from;
    }
    maybeDone(c, job);
  };

  const maybeDone = (c: Conn, job: Job) => {
    if (c.expect < 0 || c.got < c.expect) return;
    const r: PieceClientResponse = { status: c.status, length: c.status === 200 && job.into ? c.got : 0, text: Buffer.concat(c.text).toString('utf8') };
    c.inBody = false;
    c.text = [];
    c.socket.setTimeout(0);
    finishJob(c, null, r);
    if (c.job === null && job && !closed && c.keepAlive) release(c);
    else drop(c, null);
  };

  const onEnd = (c: Conn) => {
    const job = c.job;
    if (job && c.inBody && c.expect < 0) {
      // A body that runs until close.
      const r: PieceClientResponse = { status: c.status, length: c.status === 200 && job.into ? c.got : 0, text: Buffer.concat(c.text).toString('utf8') };
      finishJob(c, null, r);
    }
    drop(c, failure('holder closed the connection'));
  };

  const release = (c: Conn) => {
    c.reused = true;
    c.answered = false;
    const next = queue.shift();
    if (next) {
      send(c, next);
      return;
    }
    idle.push(c);
    c.idleTimer = setTimeout(() => drop(c, null), keepAliveMs);
    c.idleTimer.unref();
  };

  const send = (c: Conn, job: Job) => {
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.idleTimer = null;
    c.job = job;
    c.answered = false;
    c.inBody = false;
    c.head = [];
    c.headBytes = 0;
    let req = `GET ${prefix}${job.path} HTTP/1.1\r\nhost: ${hostHeader}\r\nconnection: keep-alive\r\n`;
    for (const [k, v] of Object.entries(job.headers)) req += `${k}: ${v}\r\n`;
    c.socket.setTimeout(idleTimeoutMs);
    c.socket.write(`${req}\r\n`);
  };

  const open = () => {
    const read = Buffer.allocUnsafe(readBufferBytes);
    // eslint-disable-next-line prefer-const -- the onread callback below closes over it before it is set
    let c: Conn;
    // `onread` is in Node's tls.connect since 12 but not in its ConnectionOptions type.
    const tlsOptions: ConnectionOptions & { onread: { buffer: Buffer; callback: (n: number, buf: Uint8Array) => boolean } } = {
      host,
      port,
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: !pin,
      ca: pin ? undefined : options.ca,
      onread: {
        buffer: read,
        callback: (n: number, buf: Uint8Array) => {
          onRead(c, n, buf as Buffer);
          return true;
        },
      },
    };
    const socket = connect(tlsOptions);
    c = {
      socket, ready: false, job: null, answered: false, reused: false, idleTimer: null,
      head: [], headBytes: 0, status: 0, expect: -1, got: 0, inBody: false, keepAlive: true, text: [], textBytes: 0,
    };
    conns.add(c);
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => drop(c, failure(`no TLS connection to ${host}:${port} within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(connectTimer);
      const wrong = pin ? pinMismatch(socket, pin) : null;
      if (wrong) {
        drop(c, wrong);
        return;
      }
      c.ready = true;
      const job = c.job;
      if (job) send(c, job);
    });
    socket.on('timeout', () => drop(c, failure(`holder silent for ${idleTimeoutMs} ms`)));
    socket.on('error', (err) => {
      clearTimeout(connectTimer);
      drop(c, err);
    });
    socket.on('end', () => onEnd(c));
    socket.on('close', () => {
      clearTimeout(connectTimer);
      drop(c, failure('holder closed the connection'));
    });
    return c;
  };

  const pump = () => {
    while (queue.length > 0 && !closed) {
      const c = idle.pop();
      if (c) {
        send(c, queue.shift()!);
        continue;
      }
      if (conns.size >= maxConns) return;
      const fresh = open();
      fresh.job = queue.shift()!;
    }
  };

  return {
    get(path, headers, into, onData, signal) {
      return new Promise<PieceClientResponse>((resolve, reject) => {
        if (closed) {
          reject(failure('client closed'));
          return;
        }
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const job: Job = { path, headers, into, onData, signal, resolve, reject, retried: false };
        const onAbort = () => {
          const qi = queue.indexOf(job);
          if (qi >= 0) {
            queue.splice(qi, 1);
            reject(signal.reason);
            return;
          }
          for (const c of conns) {
            if (c.job === job) {
              drop(c, signal.reason);
              return;
            }
          }
        };
        aborters.set(job, onAbort);
        signal.addEventListener('abort', onAbort, { once: true });
        queue.push(job);
        pump();
      });
    },
    close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(failure('client closed'));
      for (const c of [...conns]) drop(c, failure('client closed'));
    },
  };
}
