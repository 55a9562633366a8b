/**
 * The typed client and the pinned Node transport against a tiny real HTTPS server with a self-signed
 * certificate (the coordinator is tested with the client in test/cli).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { createApiClient } from './api-client.ts';
import {
  createNodeFetch,
  createNodeWebSocket,
  eventsUrl,
  formatFingerprint,
  normalizeFingerprint,
  probeFingerprint,
} from './node-transport.ts';
import { ErrorCode, isShoalError, ShoalError } from '../protocol/errors.ts';
import { makeTestCertificate, type TestCertificate } from '../../test/cli/tls-fixture.ts';

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  range?: string;
  body: Buffer;
}

describe('typed client over pinned HTTPS', () => {
  let cert: TestCertificate;
  let other: TestCertificate;
  let server: https.Server;
  let wss: WebSocketServer;
  let baseUrl: string;
  const seen: Seen[] = [];
  const upgrades: string[] = [];
  const content = Buffer.alloc(300_000);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
  const fetches: { close(): Promise<void> }[] = [];

  before(async () => {
    cert = makeTestCertificate();
    other = makeTestCertificate();
    server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push({
          method: req.method!,
          url: req.url!,
          authorization: req.headers.authorization,
          range: req.headers.range,
          body,
        });
        const send = (status: number, value: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(value));
        };
        const url = new URL(req.url!, 'https://x');
        if (url.pathname === '/api/v1/auth/me') {
          if (req.headers.authorization !== 'Bearer good') {
            return send(401, { error: { code: 'SESSION_EXPIRED', message: 'your session has expired' } });
          }
          return send(200, { user: { id: 'u1', username: 'ann', isAdmin: false, createdAt: 'now' } });
        }
        if (url.pathname === '/api/v1/auth/logout') {
          res.writeHead(204);
          return res.end();
        }
        if (url.pathname === '/api/v1/groups/a%20b/files' && req.method === 'GET') {
          return send(200, { files: [], query: Object.fromEntries(url.searchParams) });
        }
        if (url.pathname === '/api/v1/groups/g/files' && req.method === 'POST') {
          return send(200, {
            file: {
              sha256: createHash('sha256').update(body).digest('hex'),
              size: body.length,
              name: url.searchParams.get('name'),
            },
          });
        }
        if (url.pathname === '/api/v1/groups/g/files/f1/content') {
          const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
          if (m) {
            const start = Number(m[1]);
            const end = m[2] ? Number(m[2]) : content.length - 1;
            res.writeHead(206, {
              'content-range': `bytes ${start}-${end}/${content.length}`,
              'content-length': end - start + 1,
            });
            return res.end(content.subarray(start, end + 1));
          }
          res.writeHead(200, { 'content-length': content.length });
          return res.end(content);
        }
        if (url.pathname === '/api/v1/info') {
          res.writeHead(502, { 'content-type': 'text/html' });
          return res.end('<html>bad gateway</html>');
        }
        if (url.pathname === '/api/v1/auth/login') {
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' });
          return res.end(JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'too many attempts' } }));
        }
        send(404, { error: { code: 'GROUP_NOT_FOUND', message: 'no such group' } });
      });
    });
    wss = new WebSocketServer({ server, path: '/api/v1/events' });
    wss.on('connection', (ws, req) => {
      upgrades.push(req.headers.authorization ?? '');
      ws.on('message', (data) => ws.send(`echo:${String(data)}`));
    });
    server.on('upgrade', (req) => upgrades.push(`upgrade:${req.url}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const f of fetches) await f.close();
    wss.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function client(fingerprint: string, token?: string) {
    const fetch = createNodeFetch({ fingerprint });
    fetches.push(fetch);
    return createApiClient({ baseUrl, token, fetch });
  }

  it('normalizes fingerprints in every notation', () => {
    const hex = normalizeFingerprint(cert.fingerprint);
    assert.match(hex, /^[0-9a-f]{64}$/);
    assert.equal(normalizeFingerprint(`SHA256:${hex.toUpperCase()}`), hex);
    assert.equal(formatFingerprint(hex), cert.fingerprint);
    assert.throws(
      () => normalizeFingerprint('abc'),
      (e) => isShoalError(e, ErrorCode.BAD_REQUEST),
    );
  });

  it('probes the certificate fingerprint without sending a request', async () => {
    const before = seen.length;
    const probe = await probeFingerprint(baseUrl);
    assert.equal(probe.fingerprint, cert.fingerprint);
    assert.equal(probe.authorized, false);
    assert.equal(seen.length, before);
  });

  it('calls a route with the bearer token and parses its answer', async () => {
    const api = client(cert.fingerprint, 'good');
    const me = await api.call('whoami', {});
    assert.equal(me.user.username, 'ann');
    assert.equal(seen.at(-1)!.authorization, 'Bearer good');
    const none = await api.call('logout', {});
    assert.equal(none, undefined);
  });

  it('encodes path params and drops empty query fields', async () => {
    const api = client(cert.fingerprint, 'good');
    const out = (await api.call('listFiles', {
      params: { group: 'a b' },
      query: { search: 'iso', minSize: 5, type: undefined },
    })) as unknown as {
      query: Record<string, string>;
    };
    assert.deepEqual(out.query, { search: 'iso', minSize: '5' });
  });

  it('turns an error answer into a ShoalError with its code, message and status', async () => {
    const api = client(cert.fingerprint, 'stale');
    await assert.rejects(api.call('whoami', {}), (e: unknown) => {
      assert.ok(e instanceof ShoalError);
      assert.equal(e.code, ErrorCode.SESSION_EXPIRED);
      assert.equal(e.message, 'your session has expired');
      assert.equal(e.details?.status, 401);
      return true;
    });
    await assert.rejects(api.call('getGroup', { params: { group: 'nope' } }), (e) =>
      isShoalError(e, ErrorCode.GROUP_NOT_FOUND),
    );
    await assert.rejects(api.call('login', { body: { username: 'a', password: 'b' } }), (e: unknown) => {
      assert.ok(isShoalError(e, ErrorCode.RATE_LIMITED));
      assert.equal(e.details?.retryAfterSeconds, 30);
      return true;
    });
  });

  it('maps a non-JSON error answer by its status', async () => {
    const api = client(cert.fingerprint);
    await assert.rejects(api.call('serverInfo', {}), (e: unknown) => {
      assert.ok(isShoalError(e, ErrorCode.UNREACHABLE));
      assert.equal(e.details?.status, 502);
      return true;
    });
  });

  it('refuses a server whose certificate does not match, before sending any request bytes', async () => {
    const before = seen.length;
    const api = client(other.fingerprint, 'secret-token');
    await assert.rejects(api.call('whoami', {}), (e) => isShoalError(e, ErrorCode.TLS_FINGERPRINT_MISMATCH));
    assert.equal(seen.length, before);
  });

  it('reports a closed port as UNREACHABLE', async () => {
    const closed = https.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const fetch = createNodeFetch({ fingerprint: cert.fingerprint });
    fetches.push(fetch);
    const api = createApiClient({ baseUrl: `https://127.0.0.1:${port}`, fetch });
    await assert.rejects(api.call('whoami', {}), (e) => isShoalError(e, ErrorCode.UNREACHABLE));
  });

  it('streams an upload and reports progress up to its size', async () => {
    const api = client(cert.fingerprint, 'good');
    const progress: number[] = [];
    async function* chunks() {
      for (let i = 0; i < content.length; i += 65536) yield new Uint8Array(content.subarray(i, i + 65536));
    }
    const out = await api.upload(
      'shareFile',
      { params: { group: 'g' }, query: { name: 'x.bin' } },
      chunks(),
      {
        size: content.length,
        onProgress: (sent) => progress.push(sent),
      },
    );
    assert.equal(out.file.sha256, createHash('sha256').update(content).digest('hex'));
    assert.equal(out.file.size, content.length);
    assert.equal(out.file.name, 'x.bin');
    assert.equal(progress.at(-1), content.length);
  });

  it('downloads a byte range', async () => {
    const api = client(cert.fingerprint, 'good');
    const res = await api.download(
      'downloadFile',
      { params: { group: 'g', fileId: 'f1' } },
      { range: { start: 1000 } },
    );
    assert.equal(res.status, 206);
    const got = Buffer.from(await res.arrayBuffer());
    assert.ok(got.equals(content.subarray(1000)));
    assert.equal(seen.at(-1)!.range, 'bytes=1000-');
  });

  it('opens a pinned WebSocket with the token, and refuses a wrong certificate before the upgrade', async () => {
    const url = eventsUrl(baseUrl);
    assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/api\/v1\/events$/);
    const ws = createNodeWebSocket(url, { fingerprint: cert.fingerprint, token: 'good' });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hi'));
      ws.once('message', (d) => resolve(String(d)));
      ws.once('error', reject);
    });
    assert.equal(reply, 'echo:hi');
    ws.close();
    assert.ok(upgrades.includes('Bearer good'));

    const count = upgrades.length;
    const bad = createNodeWebSocket(url, { fingerprint: other.fingerprint, token: 'secret' });
    const err = await new Promise<unknown>((resolve) => {
      bad.once('error', resolve);
      bad.once('open', () => resolve(new Error('opened')));
    });
    assert.ok(isShoalError(err, ErrorCode.TLS_FINGERPRINT_MISMATCH), String(err));
    assert.equal(upgrades.length, count);
  });
});
