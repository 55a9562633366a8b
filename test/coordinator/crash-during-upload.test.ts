/**
 * SIGKILL during an upload: the coordinator runs as a child process; after kill -9 mid-upload and a restart on
 * the same data directory, the partial file is not in the catalogue, the temp directory is clean, and a
 * finished share is still there with the same bytes. On SQLite, and on PostgreSQL when SHOAL_TEST_PG_URL is set.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createTestClient, codeOf } from './harness.ts';
import { createTestDatabase, pgSkipReason, pgUrl } from '../support/postgres.ts';

const fixture = fileURLToPath(new URL('./fixtures/run-coordinator.ts', import.meta.url));
const adminPassword = 'crash-test-admin-password';

interface Child {
  proc: ChildProcess;
  url: string;
  fingerprint: string;
}

async function startChild(dataDir: string, db: string): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fixture, '--data', dataDir, '--db', db], {
    env: { ...process.env, SHOAL_ADMIN_PASSWORD: adminPassword },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('coordinator did not start within 60 s')), 60_000);
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`coordinator exited with ${code}`));
    });
  });
  const { url, fingerprint } = JSON.parse(line) as { url: string; fingerprint: string };
  return { proc, url, fingerprint };
}

function kill9(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

async function partBytes(dir: string): Promise<number> {
  let total = 0;
  for (const n of await readdir(dir).catch(() => [] as string[]))
    total += (await stat(join(dir, n)).catch(() => ({ size: 0 }))).size;
  return total;
}

function scenario(
  dialect: string,
  makeDb: (dataDir: string) => Promise<{ url: string; drop(): Promise<void> }>,
) {
  describe(`SIGKILL during an upload (${dialect})`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    });

    it('leaves no catalogue entry, cleans the temp dir, and keeps finished shares', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'shoal-crash-'));
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      const db = await makeDb(dataDir);
      cleanups.push(() => db.drop());

      const first = await startChild(dataDir, db.url);
      cleanups.push(() => kill9(first.proc));
      const certPem = await readFile(join(dataDir, 'tls', 'cert.pem'), 'utf8');
      const c1 = createTestClient(first.url, certPem);
      cleanups.push(() => c1.close());
      const admin = await c1.login('admin', adminPassword);
      assert.equal(
        (await c1.call('POST', '/api/v1/groups', { token: admin, json: { name: 'crash' } })).status,
        200,
      );

      const done = Buffer.alloc(3 * 1024 * 1024 + 5);
      for (let i = 0; i < done.length; i += 4096) done[i] = i & 255;
      const ok = await c1.call('POST', '/api/v1/groups/crash/files?name=finished.bin', {
        token: admin,
        raw: done,
      });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const finished = (ok.body as { file: { id: string; sha256: string } }).file;

      // A large upload that stalls after 24 MiB until the coordinator is killed.
      let release!: () => void;
      const killed = new Promise<void>((r) => (release = r));
      async function* slowBody() {
        const chunk = Buffer.alloc(1024 * 1024, 0x5a);
        for (let i = 0; i < 24; i++) yield chunk;
        await killed;
        yield chunk;
      }
      const upload = c1
        .call('POST', '/api/v1/groups/crash/files?name=partial.bin', { token: admin, raw: slowBody() })
        .then(
          (a) => a.status,
          () => 'failed',
        );
      const tmp = join(dataDir, 'tmp');
      let seen = 0;
      for (let i = 0; i < 400 && seen < 16 * 1024 * 1024; i++) {
        seen = await partBytes(tmp);
        if (seen < 16 * 1024 * 1024) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(seen > 0, 'the upload should be streaming into the temp dir');
      await kill9(first.proc);
      release();
      assert.notEqual(await upload, 200);

      const second = await startChild(dataDir, db.url);
      cleanups.push(() => kill9(second.proc));
      assert.equal(second.fingerprint, first.fingerprint, 'the certificate is reused');
      const c2 = createTestClient(second.url, certPem);
      cleanups.push(() => c2.close());
      const admin2 = await c2.login('admin', adminPassword);
      assert.deepEqual(await readdir(tmp), []);
      const list = await c2.call('GET', '/api/v1/groups/crash/files', { token: admin2 });
      assert.equal(list.status, 200);
      assert.deepEqual(
        (list.body as { files: { name: string }[] }).files.map((f) => f.name),
        ['finished.bin'],
      );
      const dl = await c2.call('GET', `/api/v1/groups/crash/files/${finished.id}/content`, { token: admin2 });
      assert.equal(dl.status, 200);
      assert.equal(createHash('sha256').update(dl.bytes).digest('hex'), finished.sha256);
      const old = await c2.call('GET', '/api/v1/auth/me', { token: admin });
      assert.equal(old.status, 200, `sessions survive a restart: ${codeOf(old)}`);
      second.proc.kill('SIGTERM');
    });
  });
}

scenario('SQLite', async (dataDir) => ({ url: join(dataDir, 'shoal.db'), drop: async () => undefined }));

if (pgUrl()) {
  scenario('PostgreSQL', async () => createTestDatabase());
} else {
  describe('SIGKILL during an upload (PostgreSQL)', () => {
    it('runs on PostgreSQL', { skip: pgSkipReason }, () => undefined);
  });
  console.log(`# ${pgSkipReason}`);
}
