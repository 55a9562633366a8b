/**
 * Test harness: a real coordinator on 127.0.0.1:0 over real TLS with SQLite in a temp dir (or a given store
 * URL), and a tiny HTTPS client pinned to its self-signed certificate.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import {
  createCoordinator,
  type Coordinator,
  type CoordinatorOptions,
} from '../../src/coordinator/coordinator.ts';
import { createStore } from '../../src/store/create-store.ts';
import type { Store } from '../../src/store/store.ts';
import { silentLogger } from '../../src/logger.ts';

export const adminPassword = 'admin-password-for-tests';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or the raw text when not JSON. */
  body: unknown;
  /** The raw bytes. */
  bytes: Buffer;
}

export interface CallOptions {
  token?: string;
  json?: unknown;
  /** Raw body (sent as application/octet-stream unless headers say otherwise). */
  raw?: Buffer | string | AsyncIterable<Uint8Array>;
  headers?: Record<string, string>;
}

/** An HTTPS client pinned to one certificate. */
export interface TestClient {
  url: string;
  dispatcher: Agent;
  call(method: string, path: string, opts?: CallOptions): Promise<Answer>;
  /** Logs in and returns the token (asserting 200). */
  login(username: string, password: string): Promise<string>;
  close(): Promise<void>;
}

export function createTestClient(url: string, certPem: string): TestClient {
  const dispatcher = new Agent({
    connect: { ca: certPem, checkServerIdentity: () => undefined },
    bodyTimeout: 120_000,
    headersTimeout: 60_000,
  });
  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<Answer> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Buffer | Readable | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = typeof opts.json === 'string' ? opts.json : JSON.stringify(opts.json);
    } else if (opts.raw !== undefined) {
      headers['content-type'] ??= 'application/octet-stream';
      body = typeof opts.raw === 'string' || Buffer.isBuffer(opts.raw) ? opts.raw : Readable.from(opts.raw);
    }
    const res = await request(url + path, { method: method as 'GET', headers, body, dispatcher });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    let parsed: unknown = bytes.toString('utf8');
    if (String(res.headers['content-type'] ?? '').includes('json')) {
      try {
        parsed = JSON.parse(bytes.toString('utf8'));
      } catch {
        /* leave as text */
      }
    }
    return { status: res.statusCode, headers: res.headers, body: parsed, bytes };
  };
  return {
    url,
    dispatcher,
    call,
    async login(username, password) {
      const a = await call('POST', '/api/v1/auth/login', { json: { username, password } });
      if (a.status !== 200) throw new Error(`login ${username}: ${a.status} ${JSON.stringify(a.body)}`);
      return (a.body as { token: string }).token;
    },
    close: () => dispatcher.close(),
  };
}

export interface TestCoordinator {
  coordinator: Coordinator;
  store: Store;
  dataDir: string;
  url: string;
  fingerprint: string;
  certPem: string;
  client: TestClient;
  adminToken: string;
  close(): Promise<void>;
}

/** Starts a coordinator on 127.0.0.1:0 with SQLite in a fresh temp dir (or `storeUrl`). */
export async function startTestCoordinator(
  opts: { storeUrl?: string; options?: Partial<CoordinatorOptions>; dataDir?: string } = {},
): Promise<TestCoordinator> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'shoal-coord-')));
  const store = await createStore({ url: opts.storeUrl ?? join(dataDir, 'shoal.db') });
  const coordinator = createCoordinator(
    { store, logger: silentLogger },
    { dataDir, host: '127.0.0.1', port: 0, adminPassword, ...opts.options },
  );
  const started = await coordinator.start();
  const certPem = await readFile(join(dataDir, 'tls', 'cert.pem'), 'utf8');
  const client = createTestClient(started.url, certPem);
  const adminToken = await client.login('admin', adminPassword);
  return {
    coordinator,
    store,
    dataDir,
    url: started.url,
    fingerprint: started.fingerprint,
    certPem,
    client,
    adminToken,
    async close() {
      await client.close();
      await coordinator.stop();
      await store.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Error code of an error answer. */
export function codeOf(a: Answer): string | undefined {
  return (a.body as { error?: { code?: string } } | undefined)?.error?.code;
}
