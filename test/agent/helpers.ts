/**
 * Helpers for agent tests: users, groups and shares over the real API of a test coordinator, agents on
 * 127.0.0.1 with their own temp directories, and bounded waiting on what a user would see.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent, type Agent } from '../../src/agent/agent.ts';
import { silentLogger } from '../../src/logger.ts';
import type { TestCoordinator } from '../coordinator/harness.ts';

export const password = 'password-for-tests';

/** Polls `fn` until it returns a truthy value; fails after `timeoutMs` (bounded in time and count). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < Math.ceil(timeoutMs / everyMs) + 1; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Creates a user (as admin) and returns its token. */
export async function makeUser(tc: TestCoordinator, username: string): Promise<string> {
  const a = await tc.client.call('POST', '/api/v1/users', {
    token: tc.adminToken,
    json: { username, password },
  });
  if (a.status !== 200) throw new Error(`create user ${username}: ${a.status} ${JSON.stringify(a.body)}`);
  return tc.client.login(username, password);
}

/** Creates a group owned by admin with the given members. */
export async function makeGroup(tc: TestCoordinator, name: string, members: string[]): Promise<void> {
  const a = await tc.client.call('POST', '/api/v1/groups', { token: tc.adminToken, json: { name } });
  if (a.status !== 200) throw new Error(`create group: ${a.status} ${JSON.stringify(a.body)}`);
  for (const m of members) await addMember(tc, name, m);
}

export async function addMember(tc: TestCoordinator, group: string, username: string): Promise<void> {
  const a = await tc.client.call('PUT', `/api/v1/groups/${group}/members/${username}`, {
    token: tc.adminToken,
    json: {},
  });
  if (a.status !== 200) throw new Error(`add member: ${a.status} ${JSON.stringify(a.body)}`);
}

/** Shares `bytes` as `name` into `group` (as admin, who created the group) and returns the file id. */
export async function share(
  tc: TestCoordinator,
  group: string,
  name: string,
  bytes: Buffer,
  token = tc.adminToken,
): Promise<string> {
  const a = await tc.client.call('POST', `/api/v1/groups/${group}/files?name=${encodeURIComponent(name)}`, {
    token,
    raw: bytes,
  });
  if (a.status !== 200) throw new Error(`share: ${a.status} ${JSON.stringify(a.body)}`);
  return (a.body as { file: { id: string } }).file.id;
}

/** Puts catalogue file `fileId` on `group`'s pending list (as admin), asserts the answer is 200 and returns the delivery id. */
export async function addPending(tc: TestCoordinator, group: string, fileId: string): Promise<string> {
  const a = await tc.client.call('POST', `/api/v1/groups/${group}/pending`, {
    token: tc.adminToken,
    json: { fileId },
  });
  assert.equal(a.status, 200);
  return (a.body as { delivery: { id: string } }).delivery.id;
}

export interface PendingRow {
  deliveryId: string;
  username: string;
  state: string;
  bytes: number;
  transport: string | null;
  error: string | null;
  fileName: string;
  attempts: number;
}

export async function pendingList(tc: TestCoordinator, group: string): Promise<PendingRow[]> {
  const a = await tc.client.call('GET', `/api/v1/groups/${group}/pending`, { token: tc.adminToken });
  if (a.status !== 200) throw new Error(`pending list: ${a.status} ${JSON.stringify(a.body)}`);
  return (a.body as { entries: PendingRow[] }).entries;
}

/** Waits until `username`'s entry for the file is delivered. */
export function waitDelivered(
  tc: TestCoordinator,
  group: string,
  username: string,
  fileName: string,
  timeoutMs = 30_000,
): Promise<PendingRow> {
  return waitFor(
    `${fileName} delivered to ${username}`,
    async () => {
      const rows = await pendingList(tc, group);
      return rows.find((r) => r.username === username && r.fileName === fileName && r.state === 'delivered');
    },
    timeoutMs,
  );
}

export interface TestAgent {
  agent: Agent;
  downloadDir: string;
  stateDir: string;
  /** Starts it again (same state and download directories). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** An agent for `token` on 127.0.0.1 with fresh temp directories (or given ones). */
export async function startAgent(
  tc: { url: string; fingerprint: string },
  token: string,
  opts: {
    name?: string;
    dirs?: { downloadDir: string; stateDir: string };
    streams?: number;
    multicastInterface?: string;
    multicastTestLossRate?: number;
  } = {},
): Promise<TestAgent> {
  const root = opts.dirs ? undefined : await mkdtemp(join(tmpdir(), 'shoal-agent-'));
  const downloadDir = opts.dirs?.downloadDir ?? join(root!, 'downloads');
  const stateDir = opts.dirs?.stateDir ?? join(root!, 'state');
  const make = () =>
    createAgent(
      { logger: silentLogger },
      {
        serverUrl: tc.url,
        fingerprint: tc.fingerprint,
        token,
        downloadDir,
        stateDir,
        name: opts.name ?? 'test-agent',
        listen: '127.0.0.1:0',
        streams: opts.streams,
        maxBackoffMs: 1000,
        multicastInterface: opts.multicastInterface,
        multicastTestLossRate: opts.multicastTestLossRate,
      },
    );
  const t: TestAgent = {
    agent: make(),
    downloadDir,
    stateDir,
    async restart() {
      await t.agent.stop();
      t.agent = make();
      await t.agent.start();
    },
    async close() {
      await t.agent.stop();
      if (root) await rm(root, { recursive: true, force: true });
    },
  };
  await t.agent.start();
  return t;
}

/** Reads a received file, or undefined when it is not there. */
export async function readReceived(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

export function randomFile(bytes: number): Buffer {
  return randomBytes(bytes);
}
