/**
 * Presence: receivers list, round-trip checks, a frozen agent not answering and then disappearing, and the
 * events socket refusing bad tokens and bad messages while the server keeps serving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { TestCoordinator } from '../coordinator/harness.ts';

// A short heartbeat so "gone within 3 intervals" is quick to see; a check timeout well under 3 intervals.
process.env.SHOAL_HEARTBEAT_MS = '1000';
process.env.SHOAL_CHECK_TIMEOUT_MS = '400';

const { startTestCoordinator, codeOf } = await import('../coordinator/harness.ts');
const { makeUser, startAgent, waitFor, password } = await import('./helpers.ts');
const { startChild, killChild } = await import('./children.ts');
const { WsClose } = await import('../../src/protocol/events.ts');
const { Limits } = await import('../../src/protocol/limits.ts');
type Child = Awaited<ReturnType<typeof startChild>>;

interface ReceiverRow {
  agentId: string;
  username: string;
  name: string;
}

describe('presence', () => {
  let tc: TestCoordinator;
  let eveToken: string;
  let root: string;
  const children: Child[] = [];

  const receivers = async (token = tc.adminToken): Promise<ReceiverRow[]> => {
    const a = await tc.client.call('GET', '/api/v1/receivers', { token });
    assert.equal(a.status, 200);
    return (a.body as { receivers: ReceiverRow[] }).receivers;
  };

  before(async () => {
    tc = await startTestCoordinator();
    eveToken = await makeUser(tc, 'eve');
    root = await mkdtemp(join(tmpdir(), 'shoal-presence-'));
  });
  after(async () => {
    for (const c of children) await killChild(c);
    await tc.close();
    await rm(root, { recursive: true, force: true });
  });

  it('lists a connected agent and answers a check with a round-trip time', async () => {
    const a = await startAgent(tc, eveToken, { name: 'eve-laptop' });
    try {
      const row = await waitFor('eve-laptop listed', async () =>
        (await receivers()).find((r) => r.name === 'eve-laptop'),
      );
      assert.equal(row.username, 'eve');
      const check = await tc.client.call('POST', `/api/v1/receivers/${row.agentId}/check`, {
        token: tc.adminToken,
      });
      assert.equal(check.status, 200);
      assert.equal(typeof (check.body as { rttMs: number }).rttMs, 'number');
      // A user sees their own agents only; another user's check is refused as not found.
      assert.equal((await receivers(eveToken)).length, 1);
      const other = await makeUser(tc, 'mallory');
      assert.equal((await receivers(other)).length, 0);
      const sneaky = await tc.client.call('POST', `/api/v1/receivers/${row.agentId}/check`, { token: other });
      assert.equal(codeOf(sneaky), 'AGENT_NOT_FOUND');
    } finally {
      await a.close();
    }
    await waitFor(
      'eve-laptop gone after stop',
      async () => !(await receivers()).some((r) => r.name === 'eve-laptop'),
    );
  });

  it('a frozen agent does not answer a check (504 NOT_ANSWERING) and leaves the list within 3 heartbeats', async () => {
    const child = await startChild('./agent-child.ts', [
      JSON.stringify({
        serverUrl: tc.url,
        fingerprint: tc.fingerprint,
        token: eveToken,
        downloadDir: join(root, 'frozen', 'dl'),
        stateDir: join(root, 'frozen', 'state'),
        name: 'frozen-box',
        listen: '127.0.0.1:0',
      }),
    ]);
    children.push(child);
    const row = await waitFor('frozen-box listed', async () =>
      (await receivers()).find((r) => r.name === 'frozen-box'),
    );
    assert.equal(row.agentId, child.ready);
    child.kill('SIGSTOP');
    const check = await tc.client.call('POST', `/api/v1/receivers/${row.agentId}/check`, {
      token: tc.adminToken,
    });
    assert.equal(check.status, 504);
    assert.equal(codeOf(check), 'NOT_ANSWERING');
    await waitFor(
      'frozen-box dropped',
      async () => !(await receivers()).some((r) => r.name === 'frozen-box'),
      15_000,
    );
    const agentRow = await tc.store.getAgent(row.agentId);
    assert.equal(agentRow?.online, false);
    await killChild(child);
  });

  it('a killed agent leaves the list', async () => {
    const child = await startChild('./agent-child.ts', [
      JSON.stringify({
        serverUrl: tc.url,
        fingerprint: tc.fingerprint,
        token: eveToken,
        downloadDir: join(root, 'killed', 'dl'),
        stateDir: join(root, 'killed', 'state'),
        name: 'killed-box',
        listen: '127.0.0.1:0',
      }),
    ]);
    children.push(child);
    await waitFor('killed-box listed', async () => (await receivers()).some((r) => r.name === 'killed-box'));
    await killChild(child);
    await waitFor(
      'killed-box dropped',
      async () => !(await receivers()).some((r) => r.name === 'killed-box'),
      15_000,
    );
  });

  describe('the events socket', () => {
    const open = (headers: Record<string, string>, protocols?: string[]) =>
      new WebSocket(tc.url.replace('https', 'wss') + '/api/v1/events', protocols, {
        headers,
        ca: tc.certPem,
        checkServerIdentity: () => undefined as unknown as boolean,
      });

    it('refuses a missing or bad token with 401', async () => {
      for (const headers of [{}, { authorization: 'Bearer nope' }] as Array<Record<string, string>>) {
        const ws = open(headers);
        const status = await new Promise<number>((resolve) => {
          ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.on('open', () => resolve(101));
          ws.on('error', () => undefined);
        });
        ws.terminate();
        assert.equal(status, 401);
      }
    });

    it('accepts a browser token as the bearer.<token> subprotocol and sends a welcome', async () => {
      const ws = open({}, [`bearer.${eveToken}`]);
      const first = await new Promise<{ type: string; user: { username: string } }>((resolve, reject) => {
        ws.once('message', (d) => resolve(JSON.parse(d.toString())));
        ws.once('error', reject);
      });
      assert.equal(first.type, 'welcome');
      assert.equal(first.user.username, 'eve');
      assert.equal(ws.protocol, `bearer.${eveToken}`);
      ws.close();
    });

    it('an agent id that belongs to another user is refused with the forbidden close code', async () => {
      const taken = (await tc.store.listAgents({})).find((a) => a.name === 'eve-laptop');
      assert.ok(taken, 'eve-laptop known from the first test');
      const other = await makeUser(tc, 'oscar');
      const ws = open({ authorization: `Bearer ${other}` });
      ws.on('message', (d) => {
        if (JSON.parse(d.toString()).type === 'welcome') {
          ws.send(
            JSON.stringify({
              type: 'hello',
              agentId: taken.id,
              name: 'imposter',
              version: '0',
              listenUrl: null,
              fingerprint: null,
              holdings: [],
            }),
          );
        }
      });
      const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
      assert.equal(code, WsClose.FORBIDDEN);
      assert.equal((await tc.store.getAgent(taken.id))?.userId, taken.userId);
    });

    it('viewers get the events they may see: a 1:1 send reaches its sender and recipient, not others', async () => {
      const viewer = async (token: string) => {
        const ws = open({ authorization: `Bearer ${token}` });
        const events: Array<{ kind: string; deliveryId?: string; state?: string }> = [];
        ws.on('message', (d) => {
          const m = JSON.parse(d.toString()) as { type: string; event?: { kind: string } };
          if (m.type === 'event') events.push(m.event!);
        });
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        return { ws, events };
      };
      const sam = await makeUser(tc, 'sam');
      const tia = await makeUser(tc, 'tia');
      const [samView, tiaView, eveView] = [await viewer(sam), await viewer(tia), await viewer(eveToken)];
      const tiaAgent = await startAgent(tc, tia, { name: 'tia-box' });
      try {
        const sent = await tc.client.call('POST', '/api/v1/direct?to=tia&name=hello.txt', {
          token: sam,
          raw: Buffer.from('hi tia'),
        });
        assert.equal(sent.status, 200);
        const deliveryId = (sent.body as { delivery: { id: string } }).delivery.id;
        const delivered = (v: { events: Array<{ kind: string; deliveryId?: string; state?: string }> }) =>
          v.events.some(
            (e) => e.kind === 'recipient' && e.deliveryId === deliveryId && e.state === 'delivered',
          );
        await waitFor('sam sees it delivered', async () => delivered(samView));
        await waitFor('tia sees it delivered', async () => delivered(tiaView));
        assert.ok(
          samView.events.some((e) => e.kind === 'delivery' && e.deliveryId === deliveryId),
          'the sender sees the delivery created',
        );
        // An event eve may see, published after the others: once it is there, the earlier ones were decided.
        assert.equal(
          (await tc.client.call('POST', '/api/v1/groups', { token: tc.adminToken, json: { name: 'marker' } }))
            .status,
          200,
        );
        await waitFor('eve sees the new group', async () => eveView.events.some((e) => e.kind === 'group'));
        assert.ok(
          !eveView.events.some((e) => e.deliveryId === deliveryId),
          'eve sees nothing of the 1:1 send',
        );
      } finally {
        await tiaAgent.close();
      }
      for (const v of [samView, tiaView, eveView]) v.ws.close();
    });

    it('closes on a malformed or oversized message with a clear code, and keeps serving', async () => {
      const closeCode = async (payload: string) => {
        const ws = open({ authorization: `Bearer ${eveToken}` });
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        ws.send(payload);
        const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
        return code;
      };
      assert.equal(await closeCode('{"type":"hello","agentId":5}'), WsClose.MALFORMED);
      assert.equal(await closeCode('not json at all'), WsClose.MALFORMED);
      const big = await closeCode(
        JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(Limits.wsMessageBytes + 10) }),
      );
      assert.ok(big === WsClose.TOO_LARGE || big === 1009, `close code ${big}`);
      const login = await tc.client.call('POST', '/api/v1/auth/login', {
        json: { username: 'eve', password },
      });
      assert.equal(login.status, 200);
    });
  });
});
