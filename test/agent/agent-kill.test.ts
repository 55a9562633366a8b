/**
 * kill -9 an agent mid-download and start it again: it resumes from its bitfield, so the coordinator (the
 * only holder) serves again at most the pieces that were in flight when it died.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestCoordinator } from '../coordinator/harness.ts';

// Each piece answer is held as long as 64 KiB take at 256 KiB/s, so the download lasts long enough to be
// killed in the middle; the assertion is on bytes, never on time.
process.env.SHOAL_PIECE_STREAM_RATE = String(256 * 1024);

const { startTestCoordinator } = await import('../coordinator/harness.ts');
const {
  addPending,
  makeGroup,
  makeUser,
  pendingList,
  randomFile,
  readReceived,
  sha256,
  share,
  waitDelivered,
  waitFor,
} = await import('./helpers.ts');
const { startChild, killChild } = await import('./children.ts');
type Child = Awaited<ReturnType<typeof startChild>>;

const pieceSize = 64 * 1024;
const streams = 4;

describe('an agent killed mid-download', () => {
  let tc: TestCoordinator;
  let root: string;
  let token: string;
  const children: Child[] = [];

  before(async () => {
    tc = await startTestCoordinator({ options: { pieceSize } });
    token = await makeUser(tc, 'kim');
    await makeGroup(tc, 'farm', ['kim']);
    root = await mkdtemp(join(tmpdir(), 'shoal-agent-kill-'));
  });
  after(async () => {
    for (const c of children) await killChild(c);
    await tc.close();
    await rm(root, { recursive: true, force: true });
  });

  it('resumes after a restart, fetching again no more than the pieces in flight', async () => {
    const options = JSON.stringify({
      serverUrl: tc.url,
      fingerprint: tc.fingerprint,
      token,
      downloadDir: join(root, 'dl'),
      stateDir: join(root, 'state'),
      name: 'kim-box',
      listen: '127.0.0.1:0',
      streams,
      maxBackoffMs: 500,
    });
    const first = await startChild('./agent-child.ts', [options]);
    children.push(first);
    const bytes = randomFile(48 * pieceSize + 1234);
    const fileId = await share(tc, 'farm', 'disk.img', bytes);
    await addPending(tc, 'farm', fileId);
    // Kill once a fair share of pieces is verified, and well before the end.
    const seen = await waitFor(
      'a third of the file received',
      async () => {
        const row = (await pendingList(tc, 'farm')).find((r) => r.username === 'kim');
        return row && row.bytes >= 16 * pieceSize ? row : undefined;
      },
      60_000,
      20,
    );
    await killChild(first);
    assert.ok(seen.bytes < bytes.length, 'killed before the end');
    const servedBeforeRestart = tc.coordinator.app.agentPlane!.pieces.servedBytes(sha256(bytes));

    const second = await startChild('./agent-child.ts', [options]);
    children.push(second);
    assert.equal(second.ready, first.ready, 'same agent id after a restart');
    await waitDelivered(tc, 'farm', 'kim', 'disk.img', 60_000);
    const got = await readReceived(join(root, 'dl', 'farm', 'disk.img'));
    assert.equal(got && sha256(got), sha256(bytes));
    const served = tc.coordinator.app.agentPlane!.pieces.servedBytes(sha256(bytes));
    const again = served - bytes.length;
    assert.ok(servedBeforeRestart < bytes.length, 'the first run did not fetch everything');
    assert.ok(
      again <= streams * pieceSize,
      `fetched ${again} bytes again; in flight at most ${streams * pieceSize}`,
    );
    const left = await readdir(join(root, 'dl', 'farm'));
    assert.deepEqual(left, ['disk.img'], 'no temp file or sidecar left behind');
  });
});
