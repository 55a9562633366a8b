/**
 * `shoal file download` against a hostile server (a tiny real HTTPS server playing the coordinator): names
 * with `..`, absolute paths, NUL, reserved or over-long names never write outside --out; bytes that do not
 * match the catalogue's SHA-256 never appear under a final name; a server that ignores Range still ends with
 * a verified file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ExitCode } from '../../src/cli/exit-codes.ts';
import { shoal, tempDir } from './cli-harness.ts';
import { makeTestCertificate } from './tls-fixture.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Served {
  name: string;
  /** Bytes served (may differ from the catalogue's hash on purpose). */
  bytes: Buffer;
  /** What the catalogue claims. */
  sha256: string;
  size: number;
  ignoreRange?: boolean;
  /** Send this many bytes, then call `onStall` and send nothing more. */
  stallAfter?: number;
  onStall?: () => void;
}

describe('downloads from a hostile server', () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  let server: https.Server;
  let home: string;
  const files = new Map<string, Served>();
  const rangesSeen: string[] = [];
  const tag = randomBytes(4).toString('hex');
  const content = randomBytes(200_000);

  const hostileNames = [
    `../../evil-${tag}.txt`,
    `/tmp/abs-${tag}.txt`,
    `..\\..\\win-${tag}.txt`,
    `a/../../b-${tag}.txt`,
    '..',
    '.',
    '',
    'nul',
    'CON.txt',
    `x\u0000y-${tag}.txt`,
    `\u0001ctl-${tag}`,
    'a'.repeat(300),
    'dir/',
    `trailing-${tag}. `,
    `sneaky-${tag}.shoal-part`,
  ];

  before(async () => {
    tmp = await tempDir();
    home = path.join(tmp.dir, 'home');
    await mkdir(home);
    const cert = makeTestCertificate();
    server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      const url = new URL(req.url!, 'https://x');
      const m = /^\/api\/v1\/groups\/g\/files\/([^/]+)(\/content)?$/.exec(url.pathname);
      const f = m ? files.get(decodeURIComponent(m[1])) : undefined;
      if (!m || !f || req.headers.authorization !== 'Bearer t') {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { code: 'FILE_NOT_FOUND', message: 'no such file' } }));
      }
      if (!m[2]) {
        const file = {
          id: m[1],
          group: 'g',
          name: f.name,
          size: f.size,
          type: '',
          sha256: f.sha256,
          pieceSize: 4 * 1024 * 1024,
          pieceCount: 1,
          sharedBy: 'mallory',
          sharedAt: new Date().toISOString(),
        };
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            file,
            manifest: {
              name: f.name,
              size: f.size,
              sha256: f.sha256,
              pieceSize: file.pieceSize,
              pieces: [f.sha256],
            },
          }),
        );
      }
      if (f.stallAfter !== undefined) {
        const stallAfter = f.stallAfter;
        f.stallAfter = undefined;
        res.writeHead(200, { 'content-length': f.bytes.length });
        res.write(f.bytes.subarray(0, stallAfter), () => f.onStall?.());
        return;
      }
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      rangesSeen.push(req.headers.range ?? '');
      if (range && !f.ignoreRange) {
        const start = Number(range[1]);
        res.writeHead(206, { 'content-range': `bytes ${start}-${f.bytes.length - 1}/${f.bytes.length}` });
        return res.end(f.bytes.subarray(start));
      }
      res.writeHead(200, { 'content-length': f.bytes.length });
      res.end(f.bytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await writeFile(
      path.join(home, 'config.json'),
      JSON.stringify({
        url,
        fingerprint: cert.fingerprint,
        token: 't',
        username: 'u',
        knownHosts: { [url]: cert.fingerprint },
      }),
      { mode: 0o600 },
    );
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await tmp?.cleanup();
  });

  it('keeps every hostile name inside --out, as one verified file', async () => {
    const root = path.join(tmp.dir, 'names');
    const out = path.join(root, 'out');
    await mkdir(out, { recursive: true });
    let i = 0;
    for (const name of hostileNames) {
      const id = `h${i++}`;
      // Distinct bytes per name: names reduced to the same fallback must still be told apart.
      const bytes = randomBytes(10_000 + i);
      files.set(id, { name, bytes, sha256: sha256(bytes), size: bytes.length });
      const before = new Set(await readdir(out));
      const r = await shoal(['file', 'download', 'g', id, '--out', out, '--json'], { home });
      assert.equal(r.code, 0, `${JSON.stringify(name)}: ${r.stderr}`);
      const saved = r.json<{ path: string }>().path;
      assert.equal(path.dirname(saved), out, `${JSON.stringify(name)} landed at ${saved}`);
      const added = (await readdir(out)).filter((n) => !before.has(n));
      assert.equal(added.length, 1, `${JSON.stringify(name)} added ${JSON.stringify(added)}`);
      assert.ok(!added[0].endsWith('.part'));
      assert.equal(sha256(await readFile(path.join(out, added[0]))), sha256(bytes));
    }
    assert.deepEqual(await readdir(root), ['out']);
    const outside = [
      ...(await readdir(tmp.dir)),
      ...(await readdir(path.dirname(tmp.dir))),
      ...(await readdir('/tmp')),
    ];
    assert.ok(!outside.some((n) => n.includes(tag)), 'nothing named by the server was written outside --out');
  });

  it('keeps nothing when the bytes do not match the catalogue hash (exit 8)', async () => {
    const out = path.join(tmp.dir, 'bad');
    files.set('bad', {
      name: 'bad.bin',
      bytes: content,
      sha256: sha256(Buffer.from('something else')),
      size: content.length,
    });
    const r = await shoal(['file', 'download', 'g', 'bad', '--out', out], { home });
    assert.equal(r.code, ExitCode.HASH_MISMATCH);
    assert.match(r.stderr, /SHA-256/);
    assert.deepEqual(await readdir(out), []);
  });

  it('stops a server that sends more bytes than the catalogue says', async () => {
    const out = path.join(tmp.dir, 'long');
    files.set('long', {
      name: 'long.bin',
      bytes: Buffer.concat([content, content]),
      sha256: sha256(content),
      size: content.length,
    });
    const r = await shoal(['file', 'download', 'g', 'long', '--out', out], { home });
    assert.equal(r.code, ExitCode.HASH_MISMATCH);
    assert.deepEqual(await readdir(out), []);
  });

  it('an interrupted download keeps its .part (exit 130) and the next run resumes from it', async () => {
    const big = randomBytes(2_000_000);
    const ac = new AbortController();
    // Give the client a moment to write what it received before the interrupt; the outcome holds either way.
    files.set('s1', {
      name: 'stall.bin',
      bytes: big,
      sha256: sha256(big),
      size: big.length,
      stallAfter: 1_000_000,
      onStall: () => setTimeout(() => ac.abort(), 200),
    });
    const out = path.join(tmp.dir, 'stall');
    const r = await shoal(['file', 'download', 'g', 's1', '--out', out], { home, signal: ac.signal });
    assert.equal(r.code, ExitCode.INTERRUPTED, r.stderr);
    assert.deepEqual(await readdir(out), ['stall.bin.part']);
    const partSize = (await readFile(path.join(out, 'stall.bin.part'))).length;
    assert.ok(partSize <= 1_000_000);
    const again = await shoal(['file', 'download', 'g', 's1', '--out', out, '--json'], { home });
    assert.equal(again.code, 0, again.stderr);
    const res = again.json<{ resumedFrom: number; fetchedBytes: number }>();
    assert.equal(res.resumedFrom, partSize);
    assert.equal(res.fetchedBytes, big.length - partSize);
    assert.equal(sha256(await readFile(path.join(out, 'stall.bin'))), sha256(big));
    assert.deepEqual(await readdir(out), ['stall.bin']);
  });

  it('resumes with a Range request, and starts over when the server ignores it', async () => {
    files.set('r1', { name: 'resume.bin', bytes: content, sha256: sha256(content), size: content.length });
    const out = path.join(tmp.dir, 'resume');
    await mkdir(out);
    await writeFile(path.join(out, 'resume.bin.part'), content.subarray(0, 50_000));
    const r = await shoal(['file', 'download', 'g', 'r1', '--out', out, '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json<{ fetchedBytes: number }>().fetchedBytes, content.length - 50_000);
    assert.equal(rangesSeen.at(-1), 'bytes=50000-');

    files.set('r2', {
      name: 'norange.bin',
      bytes: content,
      sha256: sha256(content),
      size: content.length,
      ignoreRange: true,
    });
    await writeFile(path.join(out, 'norange.bin.part'), content.subarray(0, 50_000));
    const r2 = await shoal(['file', 'download', 'g', 'r2', '--out', out, '--json'], { home });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(sha256(await readFile(path.join(out, 'norange.bin'))), sha256(content));
    assert.deepEqual((await readdir(out)).sort(), ['norange.bin', 'resume.bin']);
  });
});
