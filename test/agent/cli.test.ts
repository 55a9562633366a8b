/**
 * The delivery commands through the real `shoal` CLI (in-process): an agent started with `shoal agent`,
 * `receivers`, `check`, `pending add|list|send` with a local path shared on the way, and `send --to`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { shoal, tempDir } from '../cli/cli-harness.ts';
import { adminPassword, startTestCoordinator, type TestCoordinator } from '../coordinator/harness.ts';
import { makeGroup, makeUser, password, randomFile, readReceived, sha256, waitFor } from './helpers.ts';

describe('delivery commands', () => {
  let tc: TestCoordinator;
  let tmp: { dir: string; cleanup(): Promise<void> };
  let adminHome: string;
  let bobHome: string;
  const agentStop = new AbortController();
  let agentRun: Promise<{ code: number; stderr: string }> | undefined;

  before(async () => {
    tc = await startTestCoordinator({ options: { pieceSize: 64 * 1024 } });
    tmp = await tempDir('shoal-agent-cli-');
    adminHome = join(tmp.dir, 'admin');
    bobHome = join(tmp.dir, 'bob');
    await makeUser(tc, 'bob');
    await makeGroup(tc, 'ops', ['bob']);
    for (const [home, user, pw] of [
      [adminHome, 'admin', adminPassword],
      [bobHome, 'bob', password],
    ] as const) {
      const r = await shoal(
        ['login', tc.url, '--user', user, '--fingerprint', tc.fingerprint, '--password-stdin'],
        { home, stdin: pw + '\n' },
      );
      assert.equal(r.code, 0, r.stderr);
    }
    agentRun = shoal(
      ['agent', '--download-dir', join(tmp.dir, 'bob-dl'), '--name', 'bob-pc', '--listen', '127.0.0.1:0'],
      {
        home: bobHome,
        signal: agentStop.signal,
        env: { SHOAL_LOG: 'silent' },
      },
    );
  });
  after(async () => {
    agentStop.abort();
    await agentRun;
    await tc.close();
    await tmp.cleanup();
  });

  it('shoal receivers lists the agent and shoal check answers with a time', async () => {
    const row = await waitFor('bob-pc listed', async () => {
      const r = await shoal(['receivers', '--json'], { home: adminHome });
      return r
        .json<{ receivers: Array<{ name: string; username: string }> }>()
        .receivers.find((x) => x.name === 'bob-pc');
    });
    assert.equal(row.username, 'bob');
    const human = await shoal(['receivers'], { home: adminHome });
    assert.match(human.stdout, /bob-pc/);
    const check = await shoal(['check', 'bob'], { home: adminHome });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /bob-pc \(bob\): answered in [\d.]+ ms/);
    const none = await shoal(['check', 'nobody'], { home: adminHome });
    assert.notEqual(none.code, 0);
  });

  it('shoal pending add shares a local file on the way, and the member receives it', async () => {
    const bytes = randomFile(300 * 1024);
    await writeFile(join(adminHome, 'image.iso'), bytes);
    const add = await shoal(['pending', 'add', 'ops', 'image.iso'], { home: adminHome });
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /Added image\.iso to ops's pending list/);
    await waitFor('image.iso delivered', async () => {
      const r = await shoal(['pending', 'list', 'ops', '--json'], { home: adminHome });
      return r
        .json<{ entries: Array<{ username: string; state: string }> }>()
        .entries.find((e) => e.username === 'bob' && e.state === 'delivered');
    });
    const table = await shoal(['pending', 'list', 'ops'], { home: adminHome });
    assert.match(table.stdout, /image\.iso.*bob.*delivered/);
    const got = await readReceived(join(tmp.dir, 'bob-dl', 'ops', 'image.iso'));
    assert.equal(got && sha256(got), sha256(bytes));
    const send = await shoal(['pending', 'send', 'ops', '--json'], { home: adminHome });
    assert.equal(send.code, 0, send.stderr);
    const results = send.json<{ results: Array<{ username: string; outcome: string }> }>().results;
    assert.equal(results.find((r) => r.username === 'bob')?.outcome, 'delivered');
    // The admin owns the group, so is a member too, with no agent running.
    assert.equal(results.find((r) => r.username === 'admin')?.outcome, 'offline');
  });

  it('shoal send --to delivers one file to one user and waits for it', async () => {
    const bytes = randomFile(90 * 1024);
    await writeFile(join(adminHome, 'notes.txt'), bytes);
    const r = await shoal(['send', 'notes.txt', '--to', 'bob', '--wait'], { home: adminHome });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Sent notes\.txt .* to bob: delivered/);
    const got = await readReceived(join(tmp.dir, 'bob-dl', '_direct', 'admin', 'notes.txt'));
    assert.equal(got && sha256(got), sha256(bytes));
  });
});
