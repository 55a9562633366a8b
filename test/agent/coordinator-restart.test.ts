/**
 * The coordinator killed (SIGKILL) mid-delivery and started again on the same data directory and port:
 * the agent reconnects, is offered the delivery again, resumes, and the status ends `delivered`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestClient, type TestClient } from '../coordinator/harness.ts';
import {
  password,
  randomFile,
  readReceived,
  sha256,
  startAgent,
  waitFor,
  type TestAgent,
} from './helpers.ts';

const bin = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url));
const adminPassword = 'admin-password-restart';

interface Server {
  child: ChildProcess;
  url: string;
  fingerprint: string;
}

/** Starts `shoal server` as a child and resolves once it printed its JSON banner (bounded). */
function startServer(dataDir: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, 'server', '--data', dataDir, '--host', '127.0.0.1', '--port', String(port), '--json'],
      {
        env: {
          ...process.env,
          SHOAL_LOG: 'warn',
          SHOAL_ADMIN_PASSWORD: adminPassword,
          // Slow piece answers so the kill lands mid-download; quick heartbeats and retries.
          SHOAL_PIECE_STREAM_RATE: String(1024 * 1024),
          SHOAL_HEARTBEAT_MS: '1000',
          SHOAL_RETRY_MS: '300',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${err}`));
    }, 60_000);
    child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
    child.stdout!.on('data', (d) => {
      out += d;
      try {
        const info = JSON.parse(out) as { url: string; fingerprint: string };
        clearTimeout(timer);
        resolve({ child, url: info.url, fingerprint: info.fingerprint });
      } catch {
        // Banner not complete yet.
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('a coordinator killed mid-delivery', () => {
  let root: string;
  let server: Server | undefined;
  let client: TestClient | undefined;
  let agent: TestAgent | undefined;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-coord-kill-'));
  });
  after(async () => {
    await agent?.close();
    await client?.close();
    await kill(server?.child);
    await rm(root, { recursive: true, force: true });
  });

  it('resumes the delivery after a restart and ends delivered', async () => {
    const dataDir = join(root, 'data');
    server = await startServer(dataDir, 0);
    const port = Number(new URL(server.url).port);
    const certPem = await readFile(join(dataDir, 'tls', 'cert.pem'), 'utf8');
    client = createTestClient(server.url, certPem);
    const admin = await client.login('admin', adminPassword);
    assert.equal(
      (await client.call('POST', '/api/v1/users', { token: admin, json: { username: 'lee', password } }))
        .status,
      200,
    );
    assert.equal(
      (await client.call('POST', '/api/v1/groups', { token: admin, json: { name: 'site' } })).status,
      200,
    );
    assert.equal(
      (await client.call('PUT', '/api/v1/groups/site/members/lee', { token: admin, json: {} })).status,
      200,
    );
    const lee = await client.login('lee', password);
    agent = await startAgent({ url: server.url, fingerprint: server.fingerprint }, lee, { name: 'lee-box' });

    // The coordinator's default piece size is 4 MiB; 3 pieces of it take a while at the capped rate.
    const bytes = randomFile(3 * 4 * 1024 * 1024 - 99);
    const shared = await client.call('POST', '/api/v1/groups/site/files?name=big.bin', {
      token: admin,
      raw: bytes,
    });
    assert.equal(shared.status, 200);
    const fileId = (shared.body as { file: { id: string } }).file.id;
    assert.equal(
      (await client.call('POST', '/api/v1/groups/site/pending', { token: admin, json: { fileId } })).status,
      200,
    );
    await waitFor(
      'lee receiving',
      async () => {
        const a = await client!.call('GET', '/api/v1/groups/site/pending', { token: admin });
        return (a.body as { entries: Array<{ username: string; state: string }> }).entries.find(
          (e) => e.username === 'lee' && e.state === 'receiving',
        );
      },
      30_000,
      20,
    );

    await kill(server.child);
    await client.close();
    server = await startServer(dataDir, port);
    client = createTestClient(server.url, certPem);
    const admin2 = await client.login('admin', adminPassword);
    const row = await waitFor(
      'lee delivered after the restart',
      async () => {
        const a = await client!.call('GET', '/api/v1/groups/site/pending', { token: admin2 });
        return (
          a.body as { entries: Array<{ username: string; state: string; transport: string | null }> }
        ).entries.find((e) => e.username === 'lee' && e.state === 'delivered');
      },
      90_000,
      100,
    );
    assert.equal(row.transport, 'swarm');
    const got = await readReceived(join(agent.downloadDir, 'site', 'big.bin'));
    assert.equal(got && sha256(got), sha256(bytes));
  });
});
