/** Hostile input: bad names, oversized and malformed bodies, unknown fields, password guessing. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Limits } from '../../src/protocol/limits.ts';
import { startTestCoordinator, codeOf, type TestCoordinator, type CallOptions } from './harness.ts';

describe('hostile input', () => {
  let tc: TestCoordinator;
  let member: string;
  const api = (method: string, path: string, opts: CallOptions = {}) =>
    tc.client.call(method, `/api/v1${path}`, opts);
  const fileCount = async () => {
    const a = await api('GET', '/groups/lab/files', { token: tc.adminToken });
    return (a.body as { files: unknown[] }).files.length;
  };

  before(async () => {
    tc = await startTestCoordinator();
    assert.equal((await api('POST', '/groups', { token: tc.adminToken, json: { name: 'lab' } })).status, 200);
    assert.equal(
      (
        await api('POST', '/users', {
          token: tc.adminToken,
          json: { username: 'mallory', password: 'mallory-password' },
        })
      ).status,
      200,
    );
    assert.equal((await api('PUT', '/groups/lab/members/mallory', { token: tc.adminToken })).status, 200);
    member = await tc.client.login('mallory', 'mallory-password');
  });
  after(async () => {
    await tc?.close();
  });

  describe('file names', () => {
    const bad: Array<[string, string]> = [
      ['dot-dot', '..'],
      ['dot', '.'],
      ['a parent path', '../../etc/passwd'],
      ['a slash', 'a/b.txt'],
      ['a backslash', 'a\\b.txt'],
      ['NUL', 'evil\u0000.txt'],
      ['a newline', 'two\nlines.txt'],
      ['300 bytes', 'x'.repeat(300)],
      ['256 bytes of multi-byte letters', 'é'.repeat(128)],
      ['a device name', 'CON'],
      ['a device name with extension', 'nul.txt'],
      ['an empty name', ''],
      ['only spaces', '   '],
    ];
    for (const [why, name] of bad) {
      it(`refuses a name with ${why} with 400 INVALID_NAME and stores nothing`, async () => {
        const before = await fileCount();
        const a = await api('POST', `/groups/lab/files?name=${encodeURIComponent(name)}`, {
          token: member,
          raw: Buffer.from('payload'),
        });
        assert.equal(a.status, 400, JSON.stringify(a.body));
        assert.equal(codeOf(a), 'INVALID_NAME');
        assert.equal(await fileCount(), before);
      });
    }

    it('accepts a 255-byte name and a name with spaces and unicode', async () => {
      for (const name of ['y'.repeat(255), 'résumé 2024 (final).pdf']) {
        const a = await api('POST', `/groups/lab/files?name=${encodeURIComponent(name)}`, {
          token: member,
          raw: Buffer.from('ok'),
        });
        assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.equal((a.body as { file: { name: string } }).file.name, name);
      }
    });

    it('leaves no temp file behind after refused uploads', async () => {
      assert.deepEqual(await readdir(join(tc.dataDir, 'tmp')), []);
    });
  });

  describe('bodies', () => {
    it('answers 413 PAYLOAD_TOO_LARGE for a JSON body over the limit', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(Limits.jsonBodyBytes + 10) });
      const a = await api('POST', '/groups', { token: tc.adminToken, json: big });
      assert.equal(a.status, 413);
      assert.equal(codeOf(a), 'PAYLOAD_TOO_LARGE');
    });

    it('answers 413 for an upload whose Content-Length is over the upload limit, before reading it', async () => {
      const status = await new Promise<number>((resolve, reject) => {
        const url = new URL(tc.url);
        const sock = connect(
          {
            host: url.hostname,
            port: Number(url.port),
            ca: tc.certPem,
            checkServerIdentity: () => undefined,
          },
          () => {
            sock.write(
              `POST /api/v1/groups/lab/files?name=huge.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${member}\r\n` +
                `Content-Type: application/octet-stream\r\nContent-Length: ${Limits.uploadBytes + 1}\r\n\r\n` +
                'only a few bytes',
            );
          },
        );
        let text = '';
        sock.setEncoding('utf8');
        sock.on('data', (d: string) => {
          text += d;
          const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
          if (m) {
            resolve(Number(m[1]));
            sock.destroy();
          }
        });
        sock.on('error', reject);
        sock.setTimeout(20_000, () => reject(new Error('no answer')));
      });
      assert.equal(status, 413);
      assert.equal(await fileCount(), 2);
    });

    it('answers 400 for malformed JSON', async () => {
      const a = await api('POST', '/groups', { token: tc.adminToken, json: '{"name": "oops"' });
      assert.equal(a.status, 400);
      assert.equal(codeOf(a), 'BAD_REQUEST');
    });

    it('answers 400 VALIDATION_FAILED with the issues for unknown fields', async () => {
      const a = await api('POST', '/groups', {
        token: tc.adminToken,
        json: { name: 'extra', isAdmin: true },
      });
      assert.equal(a.status, 400);
      assert.equal(codeOf(a), 'VALIDATION_FAILED');
      const details = (a.body as { error: { details: { issues: unknown[] } } }).error.details;
      assert.ok(details.issues.length > 0);
      assert.equal((await api('GET', '/groups/extra', { token: tc.adminToken })).status, 404);
    });

    it('answers 400 for unknown query parameters and bad types', async () => {
      assert.equal((await api('GET', '/groups/lab/files?bogus=1', { token: member })).status, 400);
      assert.equal((await api('GET', '/groups/lab/files?minSize=abc', { token: member })).status, 400);
      assert.equal((await api('GET', '/groups/lab/files?since=not-a-date', { token: member })).status, 400);
    });

    it('refuses bad multicast addresses and clashes', async () => {
      for (const addr of ['10.0.0.1', '224.0.0.5', '239.1.2', '239.256.1.1', 'nonsense']) {
        const a = await api('POST', '/groups', {
          token: tc.adminToken,
          json: { name: 'mc-bad', multicastAddress: addr },
        });
        assert.equal(a.status, 400, addr);
        assert.equal(codeOf(a), 'INVALID_MULTICAST_ADDRESS');
      }
      assert.equal(
        (
          await api('POST', '/groups', {
            token: tc.adminToken,
            json: { name: 'mc-a', multicastAddress: '239.10.0.1', multicastPort: 9000 },
          })
        ).status,
        200,
      );
      const clash = await api('POST', '/groups', {
        token: tc.adminToken,
        json: { name: 'mc-b', multicastAddress: '239.10.0.1' },
      });
      assert.equal(clash.status, 409);
      assert.equal(codeOf(clash), 'MULTICAST_ADDRESS_TAKEN');
      const picked = await api('POST', '/groups', { token: tc.adminToken, json: { name: 'mc-c' } });
      assert.match(
        (picked.body as { group: { multicastAddress: string } }).group.multicastAddress,
        /^239\.(19[2-5])\./,
      );
    });
  });

  describe('aborted uploads', () => {
    it('a client that hangs up mid-upload leaves no catalogue row and no temp file', async () => {
      const before = await fileCount();
      const url = new URL(tc.url);
      const sock = connect({
        host: url.hostname,
        port: Number(url.port),
        ca: tc.certPem,
        checkServerIdentity: () => undefined,
      });
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', () => resolve());
        sock.once('error', reject);
      });
      sock.write(
        `POST /api/v1/groups/lab/files?name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${member}\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`,
      );
      const chunk = Buffer.alloc(1024 * 1024, 1);
      for (let i = 0; i < 8; i++) await new Promise<void>((r) => sock.write(chunk, () => r()));
      const tmp = join(tc.dataDir, 'tmp');
      for (let i = 0; i < 200 && (await readdir(tmp)).length === 0; i++)
        await new Promise((r) => setTimeout(r, 25));
      assert.equal((await readdir(tmp)).length, 1, 'the upload was streaming into a temp file');
      sock.destroy();
      for (let i = 0; i < 200 && (await readdir(tmp)).length > 0; i++)
        await new Promise((r) => setTimeout(r, 25));
      assert.deepEqual(await readdir(tmp), []);
      assert.equal(await fileCount(), before);
      assert.equal((await api('GET', '/info')).status, 200);
    });
  });

  describe('passwords', () => {
    it('answers 401 for a wrong password, then 429 with Retry-After, and still serves others', async () => {
      const wrong = { json: { username: 'mallory', password: 'not-the-password' } };
      const first = await api('POST', '/auth/login', wrong);
      assert.equal(first.status, 401);
      assert.equal(codeOf(first), 'INVALID_CREDENTIALS');
      let limited;
      for (let i = 0; i < 10; i++) {
        const a = await api('POST', '/auth/login', wrong);
        if (a.status === 429) {
          limited = a;
          break;
        }
        assert.equal(a.status, 401);
      }
      assert.ok(limited, 'expected 429 within 10 failures');
      assert.equal(codeOf(limited), 'RATE_LIMITED');
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      // Even the right password is refused while limited: guessing cannot be continued.
      assert.equal(
        (await api('POST', '/auth/login', { json: { username: 'mallory', password: 'mallory-password' } }))
          .status,
        429,
      );
      const info = await api('GET', '/info');
      assert.equal(info.status, 200);
      assert.equal((await api('GET', '/auth/me', { token: member })).status, 200);
    });

    it('limits failures per address across usernames', async () => {
      const strict = await startTestCoordinator({ options: { loginFailuresPerAddress: 3 } });
      try {
        const statuses = [];
        for (const u of ['ann', 'ben', 'cat', 'dan']) {
          const a = await strict.client.call('POST', '/api/v1/auth/login', {
            json: { username: u, password: 'guessing-here' },
          });
          statuses.push(a.status);
        }
        assert.deepEqual(statuses, [401, 401, 401, 429]);
      } finally {
        await strict.close();
      }
    });

    it('never returns password hashes', async () => {
      const a = await api('GET', '/users', { token: tc.adminToken });
      assert.equal(a.status, 200);
      assert.ok(!a.bytes.toString('utf8').includes('scrypt'));
      assert.ok(!a.bytes.toString('utf8').toLowerCase().includes('passwordhash'));
    });

    it('refuses registration when it is turned off', async () => {
      const closed = await startTestCoordinator({ options: { registration: false } });
      try {
        const a = await closed.client.call('POST', '/api/v1/auth/register', {
          json: { username: 'newbie', password: 'newbie-password' },
        });
        assert.equal(a.status, 403);
        assert.equal(codeOf(a), 'REGISTRATION_CLOSED');
      } finally {
        await closed.close();
      }
    });
  });
});
