/**
 * A pending file for a group with several members online goes out once by multicast (loopback here): every
 * agent gets the transfer key over its WebSocket, answers the sender's status requests, verifies the file,
 * and its status ends `delivered` by multicast (or `repair` when the swarm finished it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestCoordinator, type TestCoordinator } from '../coordinator/harness.ts';
import {
  addPending,
  makeGroup,
  makeUser,
  pendingList,
  randomFile,
  readReceived,
  sha256,
  share,
  startAgent,
  waitFor,
  type TestAgent,
} from './helpers.ts';
import { loopbackMulticastProblem } from '../multicast/helpers.ts';

describe('multicast deliveries', () => {
  let tc: TestCoordinator;
  let skip: string | null = null;
  const agents: TestAgent[] = [];
  const names = ['mia', 'ned', 'ola'];

  before(async () => {
    skip = await loopbackMulticastProblem();
    if (skip) console.log(`# skipping multicast deliveries: ${skip}`);
    tc = await startTestCoordinator({
      options: { pieceSize: 256 * 1024, multicast: { interface: '127.0.0.1', rateBps: 200e6 } },
    });
    for (const n of names) {
      const token = await makeUser(tc, n);
      agents.push(await startAgent(tc, token, { name: `${n}-box`, multicastInterface: '127.0.0.1' }));
    }
    await makeGroup(tc, 'floor', names);
  });
  after(async () => {
    for (const a of agents) await a.close();
    await tc.close();
  });

  it('sends once to every online member and each copy verifies', async (t) => {
    if (skip) return t.skip(skip);
    await waitFor(
      'all agents online',
      async () => tc.coordinator.app.agentPlane!.presence.list().length === names.length,
    );
    const bytes = randomFile(6 * 1024 * 1024 + 333);
    const fileId = await share(tc, 'floor', 'release.tar', bytes);
    await addPending(tc, 'floor', fileId);
    const rows = await waitFor(
      'delivered to every member',
      async () => {
        const list = (await pendingList(tc, 'floor')).filter((r) => names.includes(r.username));
        return list.length === names.length && list.every((r) => r.state === 'delivered') ? list : undefined;
      },
      60_000,
    );
    // On a loaded machine a receiver may join late and finish through the swarm; most copies come by multicast.
    for (const r of rows)
      assert.ok(
        ['multicast', 'repair', 'swarm'].includes(r.transport ?? ''),
        `${r.username} via ${r.transport}`,
      );
    assert.ok(
      rows.some((r) => r.transport === 'multicast'),
      `transports: ${rows.map((r) => r.transport).join(', ')}`,
    );
    // Each member's record says how the bytes came.
    for (const r of rows.filter((x) => x.transport === 'multicast')) {
      const user = (await tc.store.getUserByName(r.username))!;
      const rec = (await tc.store.getRecipient(r.deliveryId, user.id))!;
      const detail = JSON.parse(rec.detail ?? '{}') as {
        multicastBytes?: number;
        multicast?: { chunks?: number };
      };
      assert.equal(detail.multicastBytes, bytes.length);
      assert.ok((detail.multicast?.chunks ?? 0) > 0);
    }
    for (const a of agents) {
      const got = await readReceived(join(a.downloadDir, 'floor', 'release.tar'));
      assert.equal(got && sha256(got), sha256(bytes));
    }
    // Far less than one unicast copy per member left the coordinator's piece server.
    const served = tc.coordinator.app.agentPlane!.pieces.servedBytes(sha256(bytes));
    console.log(
      `multicast delivery: ${rows.map((r) => `${r.username} via ${r.transport}`).join(', ')}; unicast ${served} of ${bytes.length} bytes`,
    );
    assert.ok(served < names.length * bytes.length, `unicast served ${served} bytes`);
  });
  it('a member whose multicast cannot arrive gets the file through the swarm', async (t) => {
    if (skip) return t.skip(skip);
    const token = await makeUser(tc, 'pat');
    // 198.51.100.0/24 is TEST-NET-2: no host has it, so joining the group there fails.
    const pat = await startAgent(tc, token, { name: 'pat-box', multicastInterface: '198.51.100.77' });
    agents.push(pat);
    const add = await tc.client.call('PUT', '/api/v1/groups/floor/members/pat', {
      token: tc.adminToken,
      json: {},
    });
    assert.equal(add.status, 200);
    await waitFor('pat online', async () =>
      tc.coordinator.app.agentPlane!.presence.list().some((a) => a.username === 'pat'),
    );
    const bytes = randomFile(2 * 1024 * 1024 + 5);
    const fileId = await share(tc, 'floor', 'patch.bin', bytes);
    await addPending(tc, 'floor', fileId);
    const all = [...names, 'pat'];
    const rows = await waitFor(
      'patch.bin delivered to every member',
      async () => {
        const list = (await pendingList(tc, 'floor')).filter(
          (r) => r.fileName === 'patch.bin' && all.includes(r.username),
        );
        return list.length === all.length && list.every((r) => r.state === 'delivered') ? list : undefined;
      },
      60_000,
    );
    console.log(`fallback delivery: ${rows.map((r) => `${r.username} via ${r.transport}`).join(', ')}`);
    assert.equal(rows.find((r) => r.username === 'pat')?.transport, 'swarm');
    const got = await readReceived(join(pat.downloadDir, 'floor', 'patch.bin'));
    assert.equal(got && sha256(got), sha256(bytes));
  });
});
