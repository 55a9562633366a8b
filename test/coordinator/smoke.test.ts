import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { startTestCoordinator, codeOf, type TestCoordinator } from './harness.ts';
import { createToken } from '../../src/crypto/token.ts';

describe('coordinator basics', () => {
  let tc: TestCoordinator;
  before(async () => {
    tc = await startTestCoordinator();
  });
  after(async () => {
    await tc?.close();
  });

  it('reports the fingerprint of the certificate it serves', () => {
    assert.equal(tc.fingerprint, new X509Certificate(tc.certPem).fingerprint256);
    assert.match(tc.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('answers server info anonymously, with security headers', async () => {
    const a = await tc.client.call('GET', '/api/v1/info');
    assert.equal(a.status, 200);
    assert.equal((a.body as { registration: boolean }).registration, true);
    assert.equal(a.headers['x-content-type-options'], 'nosniff');
    assert.ok(a.headers['strict-transport-security']);
  });

  it('runs the seed scenario: group, join, approve, share, search, download', async () => {
    const c = tc.client;
    const admin = tc.adminToken;
    assert.equal(
      (await c.call('POST', '/api/v1/groups', { token: admin, json: { name: 'lab' } })).status,
      200,
    );
    assert.equal(
      (
        await c.call('POST', '/api/v1/auth/register', {
          json: { username: 'alice', password: 'alice-password' },
        })
      ).status,
      200,
    );
    assert.equal(
      (await c.call('POST', '/api/v1/auth/register', { json: { username: 'bob', password: 'bob-password' } }))
        .status,
      200,
    );
    const alice = await c.login('alice', 'alice-password');
    const bob = await c.login('bob', 'bob-password');
    for (const [token] of [[alice], [bob]]) {
      const j = await c.call('POST', '/api/v1/groups/lab/join', { token });
      assert.equal(j.status, 200, JSON.stringify(j.body));
    }
    assert.equal(
      (await c.call('POST', '/api/v1/groups/lab/requests/alice/approve', { token: admin })).status,
      200,
    );
    assert.equal(
      (await c.call('POST', '/api/v1/groups/lab/requests/bob/approve', { token: admin })).status,
      200,
    );
    const data = Buffer.alloc(5 * 1024 * 1024 + 123, 7);
    const up = await c.call('POST', '/api/v1/groups/lab/files?name=report.PDF', { token: alice, raw: data });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const file = (up.body as { file: { id: string; sha256: string; pieceCount: number; type: string } }).file;
    assert.equal(file.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(file.pieceCount, 2);
    assert.equal(file.type, 'pdf');
    const list = await c.call('GET', '/api/v1/groups/lab/files?search=repo', { token: bob });
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body as { files: { id: string }[] }).files.map((f) => f.id),
      [file.id],
    );
    const dl = await c.call('GET', `/api/v1/groups/lab/files/${file.id}/content`, { token: bob });
    assert.equal(dl.status, 200);
    assert.equal(createHash('sha256').update(dl.bytes).digest('hex'), file.sha256);
    const part = await c.call('GET', `/api/v1/groups/lab/files/${file.id}/content`, {
      token: bob,
      headers: { range: 'bytes=10-19' },
    });
    assert.equal(part.status, 206);
    assert.equal(part.bytes.length, 10);
    assert.equal(part.headers['content-range'], `bytes 10-19/${data.length}`);
    const bad = await c.call('GET', `/api/v1/groups/lab/files/${file.id}/content`, {
      token: bob,
      headers: { range: `bytes=${data.length}-` },
    });
    assert.equal(bad.status, 416);
    assert.equal(codeOf(bad), 'RANGE_NOT_SATISFIABLE');
    assert.equal(bad.headers['content-range'], `bytes */${data.length}`);
    const audit = await c.call('GET', '/api/v1/audit', { token: admin });
    const actions = (audit.body as { entries: { action: string }[] }).entries.map((e) => e.action);
    for (const a of ['group.create', 'join.approve', 'file.share']) assert.ok(actions.includes(a), a);
  });

  it('refuses an expired session with 401 SESSION_EXPIRED', async () => {
    const admin = await tc.store.getUserByName('admin');
    assert.ok(admin);
    const t = createToken(Date.now() - 10_000, 5_000);
    await tc.store.createSession({
      tokenHash: t.tokenHash,
      userId: admin.id,
      createdAt: t.createdAt,
      expiresAt: t.expiresAt,
    });
    const a = await tc.client.call('GET', '/api/v1/auth/me', { token: t.token });
    assert.equal(a.status, 401);
    assert.equal(codeOf(a), 'SESSION_EXPIRED');
  });

  it('answers HEAD on a download with the length and no body', async () => {
    const c = tc.client;
    const files = await c.call('GET', '/api/v1/groups/lab/files', { token: tc.adminToken });
    const [f] = (files.body as { files: { id: string; size: number }[] }).files;
    const h = await c.call('HEAD', `/api/v1/groups/lab/files/${f.id}/content`, { token: tc.adminToken });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(f.size));
    assert.equal(h.bytes.length, 0);
  });

  it('serves OpenAPI at /api/docs', async () => {
    const a = await tc.client.call('GET', '/api/docs/json');
    assert.equal(a.status, 200);
    const doc = a.body as { paths: Record<string, unknown> };
    assert.ok(doc.paths['/api/v1/groups/{group}/files']);
  });
});
