/**
 * A receiver that still lacks pieces when the multicast sender stops finishes through the swarm ("repair"):
 * one pass only, and one agent that drops 0.5% of the datagrams (a test knob: loopback loses nothing), so
 * most chunks arrive but few pieces are whole.
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

describe('multicast repair through the swarm', () => {
  let tc: TestCoordinator;
  let skip: string | null = null;
  const agents: TestAgent[] = [];

  before(async () => {
    skip = await loopbackMulticastProblem();
    if (skip) console.log(`skipping multicast repair: ${skip}`);
    tc = await startTestCoordinator({
      options: { pieceSize: 256 * 1024, multicast: { interface: '127.0.0.1', maxPasses: 1 } },
    });
    const good = await makeUser(tc, 'gus');
    const lossy = await makeUser(tc, 'liv');
    agents.push(await startAgent(tc, good, { name: 'gus-box', multicastInterface: '127.0.0.1' }));
    agents.push(
      await startAgent(tc, lossy, {
        name: 'liv-box',
        multicastInterface: '127.0.0.1',
        multicastTestLossRate: 0.005,
      }),
    );
    await makeGroup(tc, 'lab2', ['gus', 'liv']);
  });
  after(async () => {
    for (const a of agents) await a.close();
    await tc.close();
  });

  it('the lossy receiver finishes through the swarm and its record says repair', async (t) => {
    if (skip) return t.skip(skip);
    await waitFor(
      'both agents online',
      async () => tc.coordinator.app.agentPlane!.presence.list().length === 2,
    );
    const bytes = randomFile(4 * 1024 * 1024 + 77);
    const fileId = await share(tc, 'lab2', 'set.bin', bytes);
    await addPending(tc, 'lab2', fileId);
    const rows = await waitFor(
      'delivered to both',
      async () => {
        const list = (await pendingList(tc, 'lab2')).filter(
          (r) => r.username === 'gus' || r.username === 'liv',
        );
        return list.length === 2 && list.every((r) => r.state === 'delivered') ? list : undefined;
      },
      60_000,
    );
    console.log(`repair delivery: ${rows.map((r) => `${r.username} via ${r.transport}`).join(', ')}`);
    const liv = rows.find((r) => r.username === 'liv')!;
    assert.equal(liv.transport, 'repair');
    const user = (await tc.store.getUserByName('liv'))!;
    const detail = JSON.parse((await tc.store.getRecipient(liv.deliveryId, user.id))!.detail ?? '{}') as {
      multicastBytes: number;
      swarmBytes: number;
    };
    assert.ok(detail.multicastBytes > 0, 'some pieces came by multicast');
    assert.ok(detail.swarmBytes > 0 && detail.swarmBytes < bytes.length, `swarm ${detail.swarmBytes} bytes`);
    for (const a of agents) {
      const got = await readReceived(join(a.downloadDir, 'lab2', 'set.bin'));
      assert.equal(got && sha256(got), sha256(bytes));
    }
  });
});
