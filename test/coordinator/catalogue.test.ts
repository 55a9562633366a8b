/** The file catalogue and group lifecycle as users see them: filters, unsharing, dedupe, deletion, audit, web UI. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestCoordinator, codeOf, type CallOptions, type TestCoordinator } from './harness.ts';

const password = 'catalogue-password';

describe('file catalogue', () => {
  let tc: TestCoordinator;
  const tokens: Record<string, string> = {};
  const api = (method: string, path: string, opts: CallOptions = {}) =>
    tc.client.call(method, `/api/v1${path}`, opts);
  const share = async (who: string, group: string, name: string, bytes: Buffer) => {
    const a = await api('POST', `/groups/${group}/files?name=${encodeURIComponent(name)}`, {
      token: tokens[who],
      raw: bytes,
    });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return (a.body as { file: { id: string; sha256: string; name: string; size: number } }).file;
  };
  const names = async (query: string, who = 'carol') => {
    const a = await api('GET', `/groups/docs/files${query}`, { token: tokens[who] });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return (a.body as { files: { name: string }[] }).files.map((f) => f.name);
  };

  before(async () => {
    tc = await startTestCoordinator();
    tokens.admin = tc.adminToken;
    assert.equal((await api('POST', '/groups', { token: tokens.admin, json: { name: 'docs' } })).status, 200);
    for (const u of ['alice', 'bob', 'carol']) {
      assert.equal(
        (await api('POST', '/users', { token: tokens.admin, json: { username: u, password } })).status,
        200,
      );
      assert.equal((await api('PUT', `/groups/docs/members/${u}`, { token: tokens.admin })).status, 200);
      tokens[u] = await tc.client.login(u, password);
    }
    await share('alice', 'docs', 'Annual Report.pdf', Buffer.alloc(3000, 1));
    await share('alice', 'docs', 'notes.txt', Buffer.alloc(10, 2));
    await share('bob', 'docs', 'photo.JPG', Buffer.alloc(50_000, 3));
  });
  after(async () => {
    await tc?.close();
  });

  it('filters by search text, type, sharer, size and date, and sorts', async () => {
    assert.deepEqual(await names('?search=report'), ['Annual Report.pdf']);
    assert.deepEqual(await names('?type=jpg'), ['photo.JPG']);
    assert.deepEqual(await names('?type=.PDF'), ['Annual Report.pdf']);
    assert.deepEqual((await names('?sharer=alice&sort=name')).sort(), ['Annual Report.pdf', 'notes.txt']);
    assert.deepEqual(await names('?sharer=nobody'), []);
    assert.deepEqual(await names('?minSize=2000&maxSize=10000'), ['Annual Report.pdf']);
    assert.deepEqual(await names('?sort=size'), ['notes.txt', 'Annual Report.pdf', 'photo.JPG']);
    assert.deepEqual(
      await names(`?since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`),
      [],
    );
    assert.equal((await names('?since=2000-01-01')).length, 3);
  });

  it('serves a file with its manifest, ETag and a safe Content-Disposition', async () => {
    const [pdf] = (
      (await api('GET', '/groups/docs/files?search=Annual', { token: tokens.carol })).body as {
        files: { id: string; sha256: string }[];
      }
    ).files;
    const one = await api('GET', `/groups/docs/files/${pdf.id}`, { token: tokens.carol });
    assert.equal(one.status, 200);
    const manifest = (one.body as { manifest: { pieces: string[]; size: number; sha256: string } }).manifest;
    assert.equal(manifest.size, 3000);
    assert.deepEqual(manifest.pieces, [createHash('sha256').update(Buffer.alloc(3000, 1)).digest('hex')]);
    const dl = await api('GET', `/groups/docs/files/${pdf.id}/content`, { token: tokens.carol });
    assert.equal(dl.headers.etag, `"${pdf.sha256}"`);
    assert.equal(dl.headers['content-length'], '3000');
    assert.match(String(dl.headers['content-disposition']), /filename\*=UTF-8''Annual%20Report\.pdf/);
    const again = await api('GET', `/groups/docs/files/${pdf.id}/content`, {
      token: tokens.carol,
      headers: { 'if-none-match': `"${pdf.sha256}"` },
    });
    assert.equal(again.status, 304);
    const tail = await api('GET', `/groups/docs/files/${pdf.id}/content`, {
      token: tokens.carol,
      headers: { range: 'bytes=-100' },
    });
    assert.equal(tail.status, 206);
    assert.equal(tail.bytes.length, 100);
  });

  it('lets only the sharer, an owner or an admin unshare', async () => {
    const f = await share('alice', 'docs', 'temp.bin', Buffer.from('unshare me'));
    const refused = await api('DELETE', `/groups/docs/files/${f.id}`, { token: tokens.bob });
    assert.equal(refused.status, 403);
    assert.equal(codeOf(refused), 'FORBIDDEN');
    assert.equal((await api('DELETE', `/groups/docs/files/${f.id}`, { token: tokens.alice })).status, 204);
    assert.equal((await api('GET', `/groups/docs/files/${f.id}`, { token: tokens.alice })).status, 404);
    const g = await share('bob', 'docs', 'temp2.bin', Buffer.from('admin removes me'));
    assert.equal((await api('DELETE', `/groups/docs/files/${g.id}`, { token: tokens.admin })).status, 204);
  });

  it('stores the same bytes once and frees them when the last copy is unshared', async () => {
    const bytes = Buffer.from('the same bytes, twice');
    const sha = createHash('sha256').update(bytes).digest('hex');
    const a = await share('alice', 'docs', 'one.dat', bytes);
    const b = await share('bob', 'docs', 'two.dat', bytes);
    assert.notEqual(a.id, b.id);
    assert.equal((await readdir(join(tc.dataDir, 'blobs'))).filter((n) => n === sha).length, 1);
    assert.equal((await api('DELETE', `/groups/docs/files/${a.id}`, { token: tokens.alice })).status, 204);
    assert.ok((await readdir(join(tc.dataDir, 'blobs'))).includes(sha), 'still used by two.dat');
    assert.equal((await api('DELETE', `/groups/docs/files/${b.id}`, { token: tokens.bob })).status, 204);
    assert.ok(!(await readdir(join(tc.dataDir, 'blobs'))).includes(sha), 'freed');
  });

  it('handles an empty file', async () => {
    const f = await share('alice', 'docs', 'empty.txt', Buffer.alloc(0));
    assert.equal(f.size, 0);
    const dl = await api('GET', `/groups/docs/files/${f.id}/content`, { token: tokens.bob });
    assert.equal(dl.status, 200);
    assert.equal(dl.bytes.length, 0);
  });

  it('deleting a group removes its files and access, and is audited', async () => {
    assert.equal(
      (await api('POST', '/groups', { token: tokens.admin, json: { name: 'short-lived' } })).status,
      200,
    );
    assert.equal(
      (await api('PUT', '/groups/short-lived/members/carol', { token: tokens.admin })).status,
      200,
    );
    const f = await share('carol', 'short-lived', 'gone.txt', Buffer.from('soon gone'));
    assert.equal((await api('DELETE', '/groups/short-lived', { token: tokens.admin })).status, 204);
    const after = await api('GET', `/groups/short-lived/files/${f.id}/content`, { token: tokens.carol });
    assert.equal(after.status, 404);
    assert.equal(codeOf(after), 'GROUP_NOT_FOUND');
    const mine = await api('GET', '/me/groups', { token: tokens.carol });
    assert.deepEqual(
      (mine.body as { groups: { name: string }[] }).groups.map((g) => g.name),
      ['docs'],
    );
    const audit = await api('GET', '/audit?group=short-lived', { token: tokens.admin });
    const actions = (audit.body as { entries: { action: string; actor: string }[] }).entries.map(
      (e) => e.action,
    );
    for (const a of ['group.create', 'member.add', 'file.share', 'group.delete'])
      assert.ok(actions.includes(a), `${a} in ${actions}`);
  });

  it('records join requests and decisions in the audit log, visible to the owner', async () => {
    assert.equal(
      (await api('POST', '/users', { token: tokens.admin, json: { username: 'dave', password } })).status,
      200,
    );
    const dave = await tc.client.login('dave', password);
    assert.equal(
      (await api('PUT', '/groups/docs/members/alice', { token: tokens.admin, json: { role: 'owner' } }))
        .status,
      200,
    );
    assert.equal((await api('POST', '/groups/docs/join', { token: dave })).status, 200);
    const dup = await api('POST', '/groups/docs/join', { token: dave });
    assert.equal(codeOf(dup), 'REQUEST_PENDING');
    const pending = await api('GET', '/requests', { token: tokens.alice });
    assert.deepEqual(
      (pending.body as { requests: { username: string }[] }).requests.map((r) => r.username),
      ['dave'],
    );
    const denied = await api('POST', '/groups/docs/requests/dave/deny', { token: tokens.alice });
    assert.equal((denied.body as { request: { state: string; decidedBy: string } }).request.state, 'denied');
    assert.equal((await api('GET', '/groups/docs/files', { token: dave })).status, 403);
    assert.equal((await api('POST', '/groups/docs/join', { token: dave })).status, 200);
    assert.equal(
      (await api('POST', '/groups/docs/requests/dave/approve', { token: tokens.alice })).status,
      200,
    );
    assert.equal((await api('GET', '/groups/docs/files', { token: dave })).status, 200);
    const audit = await api('GET', '/audit', { token: tokens.alice });
    assert.equal(audit.status, 200);
    const entries = (audit.body as { entries: { action: string; actor: string; target: string }[] }).entries;
    assert.ok(entries.some((e) => e.action === 'join.deny' && e.actor === 'alice' && e.target === 'dave'));
    assert.ok(entries.some((e) => e.action === 'join.approve' && e.actor === 'alice' && e.target === 'dave'));
    assert.equal((await api('GET', '/audit', { token: dave })).status, 403);
  });

  it('keeps at least one owner', async () => {
    assert.equal((await api('POST', '/groups', { token: tokens.admin, json: { name: 'solo' } })).status, 200);
    const a = await api('POST', '/groups/solo/leave', { token: tokens.admin });
    assert.equal(a.status, 409);
    assert.equal(codeOf(a), 'LAST_OWNER');
  });

  it('answers unknown API paths with a JSON 404', async () => {
    const a = await api('GET', '/no/such/route', { token: tokens.alice });
    assert.equal(a.status, 404);
    assert.equal(codeOf(a), 'NOT_FOUND');
  });
});

describe('web UI hosting', () => {
  let tc: TestCoordinator;
  let webRoot: string;
  before(async () => {
    webRoot = await mkdtemp(join(tmpdir(), 'shoal-web-'));
    await mkdir(join(webRoot, 'assets'));
    await writeFile(join(webRoot, 'index.html'), '<!doctype html><title>Shoal</title><div id="root"></div>');
    await writeFile(join(webRoot, 'assets', 'app.js'), 'console.log("shoal")');
    tc = await startTestCoordinator({ options: { webRoot } });
  });
  after(async () => {
    await tc?.close();
    await rm(webRoot, { recursive: true, force: true });
  });

  it('serves the built files, falls back to index.html for client routes, and keeps API 404s as JSON', async () => {
    const root = await tc.client.call('GET', '/');
    assert.equal(root.status, 200);
    assert.match(String(root.body), /<title>Shoal<\/title>/);
    const js = await tc.client.call('GET', '/assets/app.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    const deep = await tc.client.call('GET', '/groups/docs/files');
    assert.equal(deep.status, 200);
    assert.match(String(deep.body), /id="root"/);
    assert.ok(String(deep.headers['content-security-policy']).includes("default-src 'self'"));
    const api = await tc.client.call('GET', '/api/v1/nothing-here');
    assert.equal(api.status, 404);
    assert.equal(codeOf(api), 'NOT_FOUND');
  });

  it('serves the API docs', async () => {
    const ui = await tc.client.call('GET', '/api/docs/');
    assert.equal(ui.status, 200);
    assert.match(String(ui.body), /swagger/i);
  });
});
