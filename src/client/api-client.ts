/**
 * The typed REST client of Shoal, generic over the route table in protocol/api.ts, so the CLI, the agent and
 * the web UI cannot drift from the API. Browser-safe: no node: imports here; the fetch implementation is
 * injected (Node callers pass one from node-transport.ts that pins the coordinator's certificate).
 */
import type { z } from 'zod';
import { routes, type RouteName, type Routes } from '../protocol/api.ts';
import { ErrorCode, ShoalError, isShoalError } from '../protocol/errors.ts';

/** Path prefix of every REST route. */
export const apiPrefix = '/api/v1';

/** The subset of `fetch` the client calls. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

type Def<K extends RouteName> = Routes[K];
type InputOfField<D, F extends string> = D extends Record<F, infer S extends z.ZodType> ? z.input<S> : never;

type ParamsPart<D> = D extends { params: z.ZodType }
  ? { params: InputOfField<D, 'params'> }
  : { params?: undefined };
type QueryPart<D> = D extends { query: z.ZodType }
  ? Record<string, never> extends InputOfField<D, 'query'>
    ? { query?: InputOfField<D, 'query'> }
    : { query: InputOfField<D, 'query'> }
  : { query?: undefined };
type BodyPart<D> = D extends { body: z.ZodType }
  ? undefined extends InputOfField<D, 'body'>
    ? { body?: InputOfField<D, 'body'> }
    : { body: InputOfField<D, 'body'> }
  : { body?: undefined };

/** What a caller passes to a route: path params, query and JSON body, typed from the route's zod schemas. */
export type RouteInput<K extends RouteName> = ParamsPart<Def<K>> & QueryPart<Def<K>> & BodyPart<Def<K>>;

/** What a route answers: the parsed JSON of its `response` schema, or void for 204 routes. */
export type RouteOutput<K extends RouteName> =
  Def<K> extends { response: infer S extends z.ZodType } ? z.infer<S> : void;

/** Routes whose request body is a raw byte stream. */
export type RawRouteName = { [K in RouteName]: Def<K> extends { raw: true } ? K : never }[RouteName];
/** Routes whose answer is a byte stream. */
export type StreamRouteName = { [K in RouteName]: Def<K> extends { stream: true } ? K : never }[RouteName];
/** Routes with a JSON (or empty) body. */
export type JsonRouteName = Exclude<RouteName, RawRouteName>;

/** Bytes an upload can take: a Blob (browser File), a web ReadableStream, bytes, or any async iterable of bytes. */
export type UploadBody = Blob | ReadableStream<Uint8Array> | Uint8Array | AsyncIterable<Uint8Array>;

export interface CallOptions {
  signal?: AbortSignal;
}

export interface UploadOptions extends CallOptions {
  /** Total size in bytes, when known (sent as Content-Length and passed to onProgress). */
  size?: number;
  /** Called as bytes leave: bytes sent so far and the total when known. */
  onProgress?: (sentBytes: number, totalBytes: number | undefined) => void;
}

export interface DownloadOptions extends CallOptions {
  /** Byte range to fetch, inclusive `end` (HTTP Range); `end` omitted means to the end of the file. */
  range?: { start: number; end?: number };
}

export interface ApiClientOptions {
  /** Origin of the coordinator (`https://host:port`), or '' for the page's own origin in a browser. */
  baseUrl: string;
  /** Bearer token of the session, when logged in. */
  token?: string;
  /** fetch to use; defaults to globalThis.fetch. */
  fetch?: FetchLike;
}

export interface ApiClient {
  readonly baseUrl: string;
  /** The current bearer token, if any. */
  readonly token: string | undefined;
  /** Use another token from now on (after login), or none (after logout). */
  setToken(token: string | undefined): void;
  /** Call a JSON route by name; resolves to its parsed answer, throws ShoalError on failure. */
  call<K extends JsonRouteName>(name: K, input: RouteInput<K>, opts?: CallOptions): Promise<RouteOutput<K>>;
  /** Call a raw-body route (a file upload), streaming `body`. */
  upload<K extends RawRouteName>(
    name: K,
    input: RouteInput<K>,
    body: UploadBody,
    opts?: UploadOptions,
  ): Promise<RouteOutput<K>>;
  /** Call a byte-stream route; resolves to the Response (200 or 206) once its status is known. */
  download<K extends StreamRouteName>(
    name: K,
    input: RouteInput<K>,
    opts?: DownloadOptions,
  ): Promise<Response>;
  /** The absolute URL of a route with its params and query filled in. */
  url<K extends RouteName>(name: K, input: RouteInput<K>): string;
}

/** Error code for an HTTP status when the answer carries no parsable error body. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 400) return ErrorCode.BAD_REQUEST;
  if (status === 401) return ErrorCode.UNAUTHENTICATED;
  if (status === 403) return ErrorCode.FORBIDDEN;
  if (status === 404) return ErrorCode.NOT_FOUND;
  if (status === 409) return ErrorCode.CONFLICT;
  if (status === 413) return ErrorCode.PAYLOAD_TOO_LARGE;
  if (status === 416) return ErrorCode.RANGE_NOT_SATISFIABLE;
  if (status === 429) return ErrorCode.RATE_LIMITED;
  if (status === 502 || status === 503 || status === 504) return ErrorCode.UNREACHABLE;
  if (status >= 500) return ErrorCode.INTERNAL;
  return ErrorCode.BAD_REQUEST;
}

const knownCodes = new Set<string>(Object.values(ErrorCode));

/** Builds the ShoalError for a non-2xx answer from its `{ error: { code, message } }` body. */
export async function errorFromResponse(res: Response): Promise<ShoalError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // The body is only a better message; the status alone still says what happened.
  }
  let code: ErrorCode = codeForStatus(res.status);
  let message = `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
  let details: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const err = parsed?.error;
    if (err && typeof err === 'object') {
      if (typeof err.code === 'string' && knownCodes.has(err.code)) code = err.code as ErrorCode;
      if (typeof err.message === 'string' && err.message) message = err.message;
      if (err.details && typeof err.details === 'object')
        details = { ...(err.details as Record<string, unknown>) };
    }
  } catch {
    // Not JSON (a proxy page, an empty body): keep the status-derived code and message.
  }
  details.status = res.status;
  const retryAfter = res.headers.get('retry-after');
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) details.retryAfterSeconds = seconds;
  }
  return new ShoalError(code, message, details);
}

/** Finds a ShoalError in an error's `cause` chain (undici wraps connector errors in "fetch failed"). */
function shoalCause(err: unknown): ShoalError | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && cur; depth++) {
    if (isShoalError(cur)) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Describes the innermost cause of a network failure (ECONNREFUSED, a TLS alert...). */
function causeText(err: unknown): string {
  let cur: unknown = err;
  let text = err instanceof Error ? err.message : String(err);
  for (let depth = 0; depth < 8 && cur; depth++) {
    const e = cur as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === 'string')
      text = `${e.code}${typeof e.message === 'string' && e.message ? ': ' + e.message : ''}`;
    else if (typeof e.message === 'string' && e.message && depth > 0) text = e.message;
    cur = e.cause;
  }
  return text;
}

/** Maps a thrown fetch failure to a ShoalError: ABORTED, a pinned-certificate mismatch, or UNREACHABLE. */
export function networkError(err: unknown, url: string, signal?: AbortSignal): ShoalError {
  const inner = shoalCause(err);
  if (inner) return inner;
  if (signal?.aborted || (err as { name?: string })?.name === 'AbortError') {
    return new ShoalError(ErrorCode.ABORTED, 'request aborted', { url });
  }
  return new ShoalError(
    ErrorCode.UNREACHABLE,
    `cannot reach ${originOf(url)}: ${causeText(err)}`,
    { url },
    { cause: err },
  );
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** A ReadableStream over `body` that reports bytes as they are pulled by fetch. */
function countingStream(body: UploadBody, onChunk: (n: number) => void): ReadableStream<Uint8Array> {
  if (body instanceof Uint8Array) {
    // Slices of 256 KiB so progress moves on large in-memory bodies too.
    let offset = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= body.byteLength) return controller.close();
        const chunk = body.subarray(offset, Math.min(body.byteLength, offset + 256 * 1024));
        offset += chunk.byteLength;
        onChunk(chunk.byteLength);
        controller.enqueue(chunk);
      },
    });
  }
  const source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> =
    typeof Blob !== 'undefined' && body instanceof Blob
      ? body.stream()
      : (body as ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>);
  if (source instanceof ReadableStream) {
    const reader = source.getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        onChunk(value.byteLength);
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
  }
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await it.next();
      if (done) return controller.close();
      const bytes = value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBuffer);
      onChunk(bytes.byteLength);
      controller.enqueue(bytes);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/** Builds a typed client for one coordinator. */
export function createApiClient(options: ApiClientOptions): ApiClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const customFetch = options.fetch !== undefined;
  const doFetch: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  let token = options.token;

  function buildUrl(name: RouteName, input: { params?: unknown; query?: unknown }): string {
    const def = routes[name];
    const params = (input.params ?? {}) as Record<string, unknown>;
    const path = def.path.replace(/:([A-Za-z0-9_]+)/g, (_m, key: string) => {
      const v = params[key];
      if (v === undefined || v === null || v === '') {
        throw new ShoalError(ErrorCode.BAD_REQUEST, `missing path parameter "${key}" for ${name}`);
      }
      return encodeURIComponent(String(v));
    });
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries((input.query ?? {}) as Record<string, unknown>)) {
      if (v === undefined || v === null || v === '') continue;
      q.set(k, v instanceof Date ? v.toISOString() : String(v));
    }
    const qs = q.toString();
    return `${baseUrl}${apiPrefix}${path}${qs ? '?' + qs : ''}`;
  }

  function headers(extra?: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (token) h.authorization = `Bearer ${token}`;
    return h;
  }

  async function send(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      res = await doFetch(url, { ...init, signal });
    } catch (err) {
      throw networkError(err, url, signal);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  async function readJson(
    res: Response,
    name: RouteName,
    url: string,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (res.status === 204 || !('response' in routes[name])) {
      // Drain so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      return undefined;
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw networkError(err, url, signal);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new ShoalError(
        ErrorCode.INTERNAL,
        `the coordinator answered ${name} with something that is not JSON`,
        {
          status: res.status,
        },
      );
    }
  }

  /** Browser upload with progress: fetch cannot report upload progress, XMLHttpRequest can. */
  function xhrUpload(url: string, body: Blob | Uint8Array, opts: UploadOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', url);
      for (const [k, v] of Object.entries(headers({ 'content-type': 'application/octet-stream' }))) {
        xhr.setRequestHeader(k, v);
      }
      const total = opts.size ?? (body instanceof Uint8Array ? body.byteLength : body.size);
      xhr.upload.onprogress = (ev) => opts.onProgress?.(ev.loaded, total);
      xhr.onerror = () =>
        reject(new ShoalError(ErrorCode.UNREACHABLE, `cannot reach ${originOf(url)}`, { url }));
      xhr.onabort = () => reject(new ShoalError(ErrorCode.ABORTED, 'request aborted', { url }));
      xhr.onload = () => {
        const retryAfter = xhr.getResponseHeader('retry-after');
        const res = new Response(xhr.status === 204 ? null : xhr.responseText, {
          status: xhr.status,
          headers: retryAfter ? { 'retry-after': retryAfter } : {},
        });
        if (!res.ok) {
          errorFromResponse(res).then(reject, reject);
          return;
        }
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : undefined);
        } catch {
          reject(
            new ShoalError(
              ErrorCode.INTERNAL,
              'the coordinator answered an upload with something that is not JSON',
            ),
          );
        }
      };
      opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(body as XMLHttpRequestBodyInit);
    });
  }

  const client: ApiClient = {
    baseUrl,
    get token() {
      return token;
    },
    setToken(next) {
      token = next;
    },
    url(name, input) {
      return buildUrl(name, input);
    },

    async call(name, input, opts = {}) {
      const def = routes[name];
      const url = buildUrl(name, input);
      const body = (input as { body?: unknown }).body;
      const hasBody = 'body' in def && body !== undefined;
      const init: RequestInit = {
        method: def.method,
        headers: headers(hasBody ? { 'content-type': 'application/json' } : undefined),
        body: hasBody ? JSON.stringify(body) : undefined,
      };
      const res = await send(url, init, opts.signal);
      return (await readJson(res, name, url, opts.signal)) as never;
    },

    async upload(name, input, body, opts = {}) {
      const def = routes[name];
      const url = buildUrl(name, input);
      const size =
        opts.size ??
        (body instanceof Uint8Array
          ? body.byteLength
          : typeof Blob !== 'undefined' && body instanceof Blob
            ? body.size
            : undefined);
      if (
        opts.onProgress &&
        !customFetch &&
        typeof XMLHttpRequest !== 'undefined' &&
        (body instanceof Uint8Array || (typeof Blob !== 'undefined' && body instanceof Blob))
      ) {
        // Browsers stream request bodies only over HTTP/2; XHR gives progress over any HTTP version.
        return (await xhrUpload(url, body, { ...opts, size })) as never;
      }
      let sent = 0;
      const stream = countingStream(body, (n) => {
        sent += n;
        opts.onProgress?.(sent, size);
      });
      const extra: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (size !== undefined) extra['content-length'] = String(size);
      const init = {
        method: def.method,
        headers: headers(extra),
        body: stream,
        // Required by fetch for a streamed request body.
        duplex: 'half',
      } as RequestInit;
      const res = await send(url, init, opts.signal);
      return (await readJson(res, name, url, opts.signal)) as never;
    },

    async download(name, input, opts = {}) {
      const def = routes[name];
      const url = buildUrl(name, input);
      const extra: Record<string, string> = { accept: '*/*' };
      if (opts.range) {
        const { start, end } = opts.range;
        extra.range = `bytes=${start}-${end === undefined ? '' : end}`;
      }
      return send(url, { method: def.method, headers: headers(extra) }, opts.signal);
    },
  };
  return client;
}
