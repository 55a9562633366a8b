/**
 * Deliveries end to end: a real coordinator (TLS, SQLite in a temp dir) and real agents in this process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestCoordinator, type TestCoordinator } from '../coordinator/harness.ts';
import {
  addMember,
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
  type TestAgent,
} from './helpers.ts';

describe('deliveries to agents', () => {
  let tc: TestCoordinator;
  const tokens: Record<string, string> = {};
  const agents: TestAgent[] = [];

  before(async () => {
    tc = await startTestCoordinator({ options: { pieceSize: 64 * 1024 } });
    for (const u of ['alice', 'bob', 'carol', 'dave']) tokens[u] = await makeUser(tc, u);
    await makeGroup(tc, 'lab', ['alice', 'bob']);
  });
  after(async () => {
    for (const a of agents) await a.close();
    await tc.close();
  });

  it('an online member receives a file added to the pending list, verified, under <group>/<name>', async () => {
    const alice = await startAgent(tc, tokens.alice, { name: 'alice-box' });
    agents.push(alice);
    await waitFor('alice online', async () => {
      const a = await tc.client.call('GET', '/api/v1/receivers', { token: tc.adminToken });
      return (a.body as { receivers: Array<{ username: string }> }).receivers.some(
        (r) => r.username === 'alice',
      );
    });
    const bytes = randomFile(700 * 1024 + 13);
    const fileId = await share(tc, 'lab', 'report.bin', bytes);
    await addPending(tc, 'lab', fileId);
    const row = await waitDelivered(tc, 'lab', 'alice', 'report.bin');
    assert.equal(row.transport, 'swarm');
    const got = await readReceived(join(alice.downloadDir, 'lab', 'report.bin'));
    assert.equal(got && sha256(got), sha256(bytes));
  });

  it('an offline member gets the file when their agent connects', async () => {
    const rows = await pendingList(tc, 'lab');
    assert.equal(rows.find((r) => r.username === 'bob' && r.fileName === 'report.bin')?.state, 'pending');
    const bob = await startAgent(tc, tokens.bob, { name: 'bob-box' });
    agents.push(bob);
    await waitDelivered(tc, 'lab', 'bob', 'report.bin');
    const got = await readReceived(join(bob.downloadDir, 'lab', 'report.bin'));
    assert.ok(got);
    assert.equal(got.length, 700 * 1024 + 13);
  });

  it('a member who joins later gets what is still pending for the group', async () => {
    const carol = await startAgent(tc, tokens.carol, { name: 'carol-box' });
    agents.push(carol);
    await addMember(tc, 'lab', 'carol');
    await waitDelivered(tc, 'lab', 'carol', 'report.bin');
    const got = await readReceived(join(carol.downloadDir, 'lab', 'report.bin'));
    assert.ok(got);
  });

  it('a 1:1 send reaches only its recipient, under _direct/<sender>/', async () => {
    const dave = await startAgent(tc, tokens.dave, { name: 'dave-box' });
    agents.push(dave);
    const bytes = randomFile(150 * 1024);
    const sent = await tc.client.call('POST', '/api/v1/direct?to=dave&name=note.txt', {
      token: tokens.alice,
      raw: bytes,
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const deliveryId = (sent.body as { delivery: { id: string } }).delivery.id;
    await waitFor('direct delivery', async () => {
      const a = await tc.client.call('GET', `/api/v1/deliveries/${deliveryId}`, { token: tokens.alice });
      return (
        (a.body as { delivery: { recipients: Array<{ state: string }> } }).delivery.recipients[0]?.state ===
        'delivered'
      );
    });
    const got = await readReceived(join(dave.downloadDir, '_direct', 'alice', 'note.txt'));
    assert.equal(got && sha256(got), sha256(bytes));
    // Nobody else may see or fetch it.
    const other = await tc.client.call('GET', `/api/v1/deliveries/${deliveryId}`, { token: tokens.bob });
    assert.equal(other.status, 404);
    const fileId = (sent.body as { file: { id: string } }).file.id;
    assert.equal(
      (await tc.client.call('GET', `/api/v1/files/${fileId}/holders`, { token: tokens.bob })).status,
      404,
    );
    assert.equal(
      (await tc.client.call('GET', `/api/v1/files/${fileId}/holders`, { token: tokens.dave })).status,
      200,
    );
    const bobFiles: string[] = await readdir(agents[1].downloadDir).catch(() => []);
    assert.ok(!bobFiles.includes('_direct'));
  });

  it('members who received a file are offered as holders for the next receivers', async () => {
    const rows = await pendingList(tc, 'lab');
    const fileId = (await tc.client.call('GET', '/api/v1/groups/lab/files', { token: tc.adminToken }))
      .body as { files: Array<{ id: string; name: string }> };
    const id = fileId.files.find((f) => f.name === 'report.bin')!.id;
    const h = await tc.client.call('GET', `/api/v1/files/${id}/holders`, { token: tokens.carol });
    assert.equal(h.status, 200);
    const holders = (h.body as { holders: Array<{ id: string; url: string | null }> }).holders;
    assert.ok(holders.some((x) => x.id === 'coordinator'));
    assert.ok(holders.filter((x) => x.url !== null).length >= 2, JSON.stringify(holders));
    assert.ok(rows.length >= 3);
  });
});
