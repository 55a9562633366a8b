/**
 * The multicast options as real flags, end to end through the CLI (in-process): `shoal server
 * --multicast-rate/--multicast-min-rate/--multicast-max-passes/--multicast-interface/--heartbeat-ms` reach
 * the sender (the transfers route reports the configured ceiling, floor and most passes), agents started
 * with `shoal agent --interface` receive by multicast, and `shoal server --no-multicast` delivers by the
 * swarm with no transfer at all.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { run, type CliIo } from '../../src/cli/main.ts';
import { Capture, shoal, tempDir } from '../cli/cli-harness.ts';
import { loopbackMulticastProblem } from '../multicast/helpers.ts';
import { password, randomFile, readReceived, sha256, waitFor } from './helpers.ts';

const adminPw = 'admin-password-for-transfers';

interface Server {
  url: string;
  fingerprint: string;
  stop(): Promise<void>;
}

/** Runs `shoal server` in-process with `flags` until stop(); resolves once its JSON banner is printed. */
async function startServer(dataDir: string, flags: string[]): Promise<Server> {
  const stdout = new Capture();
  const stderr = new Capture();
  const stop = new AbortController();
  const io: CliIo = {
    stdout,
    stderr,
    stdin: Readable.from([]) as unknown as CliIo['stdin'],
    env: { PATH: process.env.PATH, HOME: dataDir, SHOAL_LOG: 'silent', SHOAL_ADMIN_PASSWORD: adminPw },
    cwd: dataDir,
    signal: stop.signal,
  };
  const done = run(
    ['server', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--json', ...flags],
    io,
  );
  let exited: number | undefined;
  void done.then((code) => (exited = code));
  const banner = await waitFor(
    'the server banner',
    async () => {
      if (exited !== undefined) throw new Error(`shoal server exited ${exited}: ${stderr.text}`);
      try {
        return JSON.parse(stdout.text) as { url: string; fingerprint: string };
      } catch {
        return undefined;
      }
    },
    20_000,
  );
  return {
    url: banner.url,
    fingerprint: banner.fingerprint,
    async stop() {
      stop.abort();
      await done;
    },
  };
}

interface World {
  server: Server;
  adminHome: string;
  agents: Array<{ name: string; downloadDir: string; stop: AbortController; run: Promise<unknown> }>;
}

/** A server with `flags`, users u1 and u2 in group `fl`, each with an agent started by `shoal agent --interface`. */
async function world(root: string, flags: string[]): Promise<World> {
  const server = await startServer(join(root, 'data'), flags);
  const adminHome = join(root, 'admin');
  const login = (home: string, user: string, pw: string) =>
    shoal(['login', server.url, '--user', user, '--fingerprint', server.fingerprint, '--password-stdin'], {
      home,
      stdin: pw + '\n',
    });
  assert.equal((await login(adminHome, 'admin', adminPw)).code, 0);
  const must = async (args: string[], stdin?: string) => {
    const r = await shoal(args, { home: adminHome, stdin });
    assert.equal(r.code, 0, `shoal ${args.join(' ')}: ${r.stderr}`);
  };
  await must(['group', 'create', 'fl']);
  const agents: World['agents'] = [];
  for (const u of ['u1', 'u2']) {
    await must(['user', 'create', u, '--password-stdin'], `${password}\n${password}\n`);
    await must(['group', 'add', 'fl', u]);
    const home = join(root, u);
    assert.equal((await login(home, u, password)).code, 0);
    const downloadDir = join(root, `${u}-dl`);
    const stop = new AbortController();
    const args = ['agent', '--download-dir', downloadDir, '--name', `${u}-box`, '--listen', '127.0.0.1:0'];
    const agentRun = shoal([...args, '--interface', '127.0.0.1'], {
      home,
      signal: stop.signal,
      env: { SHOAL_LOG: 'silent' },
    });
    agents.push({ name: u, downloadDir, stop, run: agentRun });
  }
  await waitFor('both agents online', async () => {
    const r = await shoal(['receivers', '--json'], { home: adminHome });
    return r.json<{ receivers: unknown[] }>().receivers.length === 2;
  });
  return { server, adminHome, agents };
}

async function closeWorld(w: World | undefined): Promise<void> {
  if (!w) return;
  for (const a of w.agents) a.stop.abort();
  await Promise.all(w.agents.map((a) => a.run));
  await w.server.stop();
}

describe('multicast options of shoal server', () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  let skip: string | null = null;
  const worlds: World[] = [];

  before(async () => {
    skip = await loopbackMulticastProblem();
    if (skip) console.log(`# skipping multicast server options: ${skip}`);
    tmp = await tempDir('shoal-transfers-');
  });
  after(async () => {
    for (const w of worlds) await closeWorld(w);
    await tmp.cleanup();
  });

  it('--multicast-rate, --multicast-min-rate and --multicast-max-passes reach the sender', async (t) => {
    if (skip) return t.skip(skip);
    const w = await world(join(tmp.dir, 'on'), [
      '--multicast-interface',
      '127.0.0.1',
      '--multicast-rate',
      '50',
      '--multicast-min-rate',
      '10',
      '--multicast-max-passes',
      '3',
      '--multicast-ttl',
      '1',
      '--heartbeat-ms',
      '2000',
    ]);
    worlds.push(w);
    const bytes = randomFile(1024 * 1024 + 11);
    const file = join(tmp.dir, 'on-file.bin');
    await writeFile(file, bytes);
    const push = await shoal(['push', 'fl', file, '--json'], { home: w.adminHome, cwd: tmp.dir });
    assert.equal(push.code, 0, push.stderr);
    const { transferId } = push.json<{ transferId: string | null }>();
    assert.ok(transferId, 'a multicast transfer was opened');
    const tr = await shoal(['transfers', '--json'], { home: w.adminHome });
    assert.equal(tr.code, 0, tr.stderr);
    const x = tr
      .json<{
        transfers: Array<{
          transferId: string;
          rateBps: number;
          minRateBps: number;
          maxPasses: number;
          receivers: Array<{ username: string; delivery: string | null }>;
        }>;
      }>()
      .transfers.find((y) => y.transferId === transferId);
    assert.ok(x);
    assert.equal(x.rateBps, 50_000_000);
    assert.equal(x.minRateBps, 10_000_000);
    assert.equal(x.maxPasses, 3);
    assert.deepEqual(x.receivers.map((r) => r.username).sort(), ['u1', 'u2']);
    for (const a of w.agents) {
      const got = await readReceived(join(a.downloadDir, 'fl', 'on-file.bin'));
      assert.equal(got && sha256(got), sha256(bytes));
    }
  });

  it('--no-multicast delivers by the swarm, with no transfer', async () => {
    const w = await world(join(tmp.dir, 'off'), ['--no-multicast']);
    worlds.push(w);
    const bytes = randomFile(512 * 1024 + 5);
    const file = join(tmp.dir, 'off-file.bin');
    await writeFile(file, bytes);
    const push = await shoal(['push', 'fl', file, '--json'], { home: w.adminHome, cwd: tmp.dir });
    assert.equal(push.code, 0, push.stderr);
    const res = push.json<{ transferId: string | null; summary: Array<{ username: string; how: string }> }>();
    assert.equal(res.transferId, null);
    for (const u of ['u1', 'u2']) assert.equal(res.summary.find((s) => s.username === u)?.how, 'swarm');
    const tr = await shoal(['transfers', '--json'], { home: w.adminHome });
    assert.deepEqual(tr.json<{ transfers: unknown[] }>().transfers, []);
    for (const a of w.agents) {
      const got = await readReceived(join(a.downloadDir, 'fl', 'off-file.bin'));
      assert.equal(got && sha256(got), sha256(bytes));
    }
  });
});
