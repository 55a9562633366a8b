/**
 * What must not happen: a removed member fetching, a hostile catalogue name writing outside the download
 * directory, a corrupting holder spoiling a file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open as openFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Agent as HttpAgent, request } from 'undici';
import { startTestCoordinator, type TestCoordinator } from '../coordinator/harness.ts';
import {
  addMember,
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

const pieceSize = 64 * 1024;

/** Every file under `dir`, relative to it. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  }
  return out.sort();
}

describe('safety of deliveries', () => {
  let tc: TestCoordinator;
  const tokens: Record<string, string> = {};
  const agents: TestAgent[] = [];
  let pieceClient: HttpAgent;

  before(async () => {
    tc = await startTestCoordinator({ options: { pieceSize } });
    for (const u of ['ann', 'ben', 'cat', 'dan']) tokens[u] = await makeUser(tc, u);
    pieceClient = new HttpAgent({ connect: { ca: tc.certPem, checkServerIdentity: () => undefined } });
  });
  after(async () => {
    for (const a of agents) await a.close();
    await pieceClient.close();
    await tc.close();
  });

  const fetchPiece = async (sha: string, index: number, ticket: string) => {
    const res = await request(`${tc.url}/pieces/${sha}/${index}`, {
      headers: { authorization: `Bearer ${ticket}` },
      dispatcher: pieceClient,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, body };
  };

  it('a removed member can no longer fetch: ticket refused, no holders, no pending entry', async () => {
    await makeGroup(tc, 'team', ['ann']);
    const bytes = randomFile(3 * pieceSize);
    const fileId = await share(tc, 'team', 'plan.pdf', bytes);
    const h = await tc.client.call('GET', `/api/v1/files/${fileId}/holders`, { token: tokens.ann });
    assert.equal(h.status, 200);
    const { ticket } = h.body as { ticket: string };
    const ok = await fetchPiece(sha256(bytes), 0, ticket);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, bytes.subarray(0, pieceSize));

    assert.equal(
      (await tc.client.call('DELETE', '/api/v1/groups/team/members/ann', { token: tc.adminToken })).status,
      204,
    );
    const refused = await fetchPiece(sha256(bytes), 1, ticket);
    assert.equal(refused.status, 403);
    assert.equal(
      (await tc.client.call('GET', `/api/v1/files/${fileId}/holders`, { token: tokens.ann })).status,
      404,
    );
    await tc.client.call('POST', '/api/v1/groups/team/pending', { token: tc.adminToken, json: { fileId } });
    assert.ok(!(await pendingList(tc, 'team')).some((r) => r.username === 'ann'));

    // Forged and other-file tickets are refused too.
    const forged = ticket.slice(0, -4) + (ticket.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    assert.equal((await fetchPiece(sha256(bytes), 0, forged)).status, 401);
    const other = randomFile(1000);
    await share(tc, 'team', 'other.bin', other);
    assert.equal((await fetchPiece(sha256(other), 0, ticket)).status, 401);
  });

  it('hostile names from the catalogue never write outside the download directory', async () => {
    await makeGroup(tc, 'den', ['ben']);
    const ben = await startAgent(tc, tokens.ben, { name: 'ben-box' });
    agents.push(ben);
    const bytes = randomFile(2 * pieceSize + 7);
    const legit = await share(tc, 'den', 'legit.bin', bytes);
    const group = (await tc.store.getGroupByName('den'))!;
    const legitRow = (await tc.store.getFile(legit))!;
    const hostile = [
      '../../escape.txt',
      '/etc/shoal-owned',
      'a/../../b.txt',
      '..',
      'CON.txt',
      'x\u0000y',
      'sub/dir/inner.txt',
      'C:\\evil.txt',
    ];
    for (const name of hostile) {
      // Straight into the store: the share route would refuse these names, a hostile coordinator would not.
      const f = await tc.store.createFile({
        groupId: group.id,
        name,
        type: 'txt',
        sha256: legitRow.sha256,
        size: legitRow.size,
        sharedBy: legitRow.sharedBy,
        sharedAt: Date.now(),
      });
      const a = await tc.client.call('POST', '/api/v1/groups/den/pending', {
        token: tc.adminToken,
        json: { fileId: f.id },
      });
      assert.equal(a.status, 200);
    }
    const rows = await waitFor('every hostile delivery settled', async () => {
      const list = (await pendingList(tc, 'den')).filter((r) => r.username === 'ben');
      return list.length === hostile.length &&
        list.every((r) => r.state === 'delivered' || r.state === 'failed')
        ? list
        : undefined;
    });
    const files = await walk(ben.downloadDir);
    for (const f of files)
      assert.ok(f.startsWith('den/') && !f.slice(4).includes('/'), `unexpected file ${f}`);
    // The only name that reduces to a safe one is kept inside the group folder; the others are refused.
    assert.deepEqual(files, ['den/inner.txt']);
    const failed = rows.filter((r) => r.state === 'failed');
    assert.equal(failed.length, hostile.length - 1);
    for (const r of failed) assert.match(r.error ?? '', /file name refused/);
    const stateFiles = await walk(ben.stateDir);
    assert.ok(stateFiles.every((f) => !f.includes('escape') && !f.includes('owned')));
  });

  it('three holders, one corrupting: the file arrives correct and the bad holder is reported', async () => {
    await makeGroup(tc, 'mesh', ['cat', 'dan']);
    const cat = await startAgent(tc, tokens.cat, { name: 'cat-box' });
    const dan = await startAgent(tc, tokens.dan, { name: 'dan-box' });
    agents.push(cat, dan);
    const bytes = randomFile(40 * pieceSize);
    const fileId = await share(tc, 'mesh', 'model.bin', bytes);
    await tc.client.call('POST', '/api/v1/groups/mesh/pending', { token: tc.adminToken, json: { fileId } });
    await waitDelivered(tc, 'mesh', 'cat', 'model.bin');
    await waitDelivered(tc, 'mesh', 'dan', 'model.bin');
    // Dan's copy rots on disk: one byte flipped in every piece.
    const fh = await openFile(join(dan.downloadDir, 'mesh', 'model.bin'), 'r+');
    try {
      for (let i = 0; i < 40; i++) {
        const b = Buffer.alloc(1);
        await fh.read(b, 0, 1, i * pieceSize + 5);
        b[0] ^= 0xff;
        await fh.write(b, 0, 1, i * pieceSize + 5);
      }
    } finally {
      await fh.close();
    }
    const ed = await makeUser(tc, 'ed');
    const edAgent = await startAgent(tc, ed, { name: 'ed-box' });
    agents.push(edAgent);
    await waitFor('ed online', async () =>
      tc.coordinator.app.agentPlane!.presence.list().some((a) => a.username === 'ed'),
    );
    const h = await tc.client.call('GET', `/api/v1/files/${fileId}/holders`, { token: tokens.cat });
    // Three holders for the next receiver: the coordinator, cat and dan.
    assert.equal((h.body as { holders: unknown[] }).holders.length, 3);
    await addMember(tc, 'mesh', 'ed');
    await waitDelivered(tc, 'mesh', 'ed', 'model.bin');
    const got = await readReceived(join(edAgent.downloadDir, 'mesh', 'model.bin'));
    assert.equal(got && sha256(got), sha256(bytes));
    const edUser = (await tc.store.getUserByName('ed'))!;
    const d = (await tc.store.listDeliveries({ groupId: (await tc.store.getGroupByName('mesh'))!.id }))[0];
    const rec = (await tc.store.getRecipient(d.id, edUser.id))!;
    const detail = JSON.parse(rec.detail ?? '{}') as {
      badHolders?: Array<{ id: string }>;
      bytesPerHolder?: Record<string, number>;
    };
    assert.ok(
      detail.badHolders?.some((b) => b.id === dan.agent.agentId),
      `bad holders: ${JSON.stringify(detail.badHolders)}`,
    );
    assert.ok(
      !(await tc.store.listHolders(sha256(bytes))).includes(dan.agent.agentId),
      'dan is no longer offered as a holder',
    );
  });
});
