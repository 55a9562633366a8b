/**
 * Failures and withdrawals: a delivery that fails on the agent is retried with backoff until it succeeds; a
 * delivery taken off the pending list mid-download stops on the agent and leaves no partial file; deleting
 * the group stops what its members were receiving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestCoordinator } from '../coordinator/harness.ts';
import type { TestAgent } from './helpers.ts';

// Quick retries; slow piece answers (64 KiB at 128 KiB/s per stream) so a download can be caught mid-way.
process.env.SHOAL_RETRY_MS = '200';
process.env.SHOAL_PIECE_STREAM_RATE = String(128 * 1024);

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
  startAgent,
  waitDelivered,
  waitFor,
} = await import('./helpers.ts');

const pieceSize = 64 * 1024;

describe('failures and withdrawals', () => {
  let tc: TestCoordinator;
  let agent: TestAgent;

  before(async () => {
    tc = await startTestCoordinator({ options: { pieceSize } });
    const token = await makeUser(tc, 'rob');
    await makeGroup(tc, 'yard', ['rob']);
    await makeGroup(tc, 'shed', ['rob']);
    agent = await startAgent(tc, token, { name: 'rob-box' });
    await waitFor('rob online', async () => tc.coordinator.app.agentPlane!.presence.list().length === 1);
  });
  after(async () => {
    await agent.close();
    await tc.close();
  });

  it('retries a failed delivery with backoff until it succeeds', async () => {
    // A plain file where the group folder should be: the agent cannot write until it is gone.
    await mkdir(agent.downloadDir, { recursive: true });
    await writeFile(join(agent.downloadDir, 'yard'), 'in the way');
    const bytes = randomFile(pieceSize + 10);
    const fileId = await share(tc, 'yard', 'map.png', bytes);
    await addPending(tc, 'yard', fileId);
    const failed = await waitFor('a failed attempt', async () => {
      const row = (await pendingList(tc, 'yard')).find(
        (r) => r.username === 'rob' && r.fileName === 'map.png',
      );
      return row && row.attempts > 0 ? row : undefined;
    });
    assert.ok(failed.error, 'the failure says why');
    await rm(join(agent.downloadDir, 'yard'));
    const row = await waitDelivered(tc, 'yard', 'rob', 'map.png');
    assert.ok(row.attempts >= 1, 'delivered after at least one retry');
    const got = await readReceived(join(agent.downloadDir, 'yard', 'map.png'));
    assert.equal(got && sha256(got), sha256(bytes));
  });

  it('a delivery removed from the pending list mid-download stops and leaves no partial file', async () => {
    const bytes = randomFile(40 * pieceSize);
    const fileId = await share(tc, 'yard', 'huge.iso', bytes);
    const add = await tc.client.call('POST', '/api/v1/groups/yard/pending', {
      token: tc.adminToken,
      json: { fileId },
    });
    const deliveryId = (add.body as { delivery: { id: string } }).delivery.id;
    await waitFor(
      'rob receiving huge.iso',
      async () => {
        const row = (await pendingList(tc, 'yard')).find(
          (r) => r.username === 'rob' && r.fileName === 'huge.iso',
        );
        return row && row.state === 'receiving' && row.bytes > 0;
      },
      30_000,
      20,
    );
    const del = await tc.client.call('DELETE', `/api/v1/groups/yard/pending/${deliveryId}`, {
      token: tc.adminToken,
    });
    assert.equal(del.status, 204);
    assert.ok(!(await pendingList(tc, 'yard')).some((r) => r.fileName === 'huge.iso'));
    await waitFor('partial files removed', async () => {
      const left = await readdir(join(agent.downloadDir, 'yard'));
      return !left.some((f) => f.includes('huge.iso'));
    });
    assert.ok(!agent.agent.status().active.includes(deliveryId));
  });

  it('deleting a group stops what its members were receiving', async () => {
    const bytes = randomFile(40 * pieceSize);
    const fileId = await share(tc, 'shed', 'tools.tar', bytes);
    const add = await tc.client.call('POST', '/api/v1/groups/shed/pending', {
      token: tc.adminToken,
      json: { fileId },
    });
    const deliveryId = (add.body as { delivery: { id: string } }).delivery.id;
    await waitFor(
      'rob receiving tools.tar',
      async () => agent.agent.status().active.includes(deliveryId),
      30_000,
      20,
    );
    assert.equal(
      (await tc.client.call('DELETE', '/api/v1/groups/shed', { token: tc.adminToken })).status,
      204,
    );
    await waitFor('the agent stopped', async () => !agent.agent.status().active.includes(deliveryId));
    const left = await readdir(join(agent.downloadDir, 'shed')).catch(() => [] as string[]);
    assert.ok(!left.includes('tools.tar'), 'the file never appeared under its name');
  });
});
