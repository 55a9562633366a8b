/**
 * Swarm: one sharer and N receivers, every host's upload capped; time until all N hold the file, against
 * the ideal size ÷ cap and against what one server feeding N receivers needs (about N × size ÷ cap).
 * Receivers serve each other what they verified while downloading. Prints figures; asserts nothing on time.
 *
 *   node --import tsx bench/swarm/swarm.ts [--n 8] [--size-mib 64] [--piece-kib 256] [--cap-mbit 40] [--streams 4] [--bed]
 *
 * Measured on the shared 2-core box under load (loopback, N = 8, 64 MiB, 256 KiB pieces, 40 Mbit/s caps):
 * all 8 done in 1.93 × size ÷ cap, the sharer sending 1.4 copies. With only 32 pieces it was 3.2 ×: the
 * first wave of requests (N × streams) collides on the sharer when pieces are few.
 *
 * Loopback by default (every process on 127.0.0.1, caps applied by each piece server's upload pacer). With
 * --bed (root, a bed already up with N receivers: `testbed.sh up 8 200 0`), the sharer runs in `s` and
 * receiver K in `rK`; this script never builds or removes the bed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateTicketKeys, publicKeyToRaw, signTicket } from '../../src/crypto/tickets.ts';
import { hashFile } from '../../src/transfer/pieces/hash-file.ts';
import { inBed, node, opt, startLineChild, writeCert, writeRandomFile, type LineChild } from './bench-util.ts';

const n = Math.max(1, Math.min(32, Number(opt('n', '8'))));
const sizeMiB = Number(opt('size-mib', '64'));
const capMbit = Number(opt('cap-mbit', '40'));
const streams = Number(opt('streams', '4'));
const pieceKiB = Number(opt('piece-kib', '256'));
const bed = process.argv.includes('--bed');
const here = fileURLToPath(new URL('.', import.meta.url));

const work = await mkdtemp(join(tmpdir(), 'shoal-bench-swarm-'));
const children: LineChild[] = [];
try {
  const file = join(work, 'payload.bin');
  console.log(`writing ${sizeMiB} MiB of random data…`);
  await writeRandomFile(file, sizeMiB);
  const manifest = { name: 'payload.bin', ...(await hashFile(file, pieceKiB * 1024)) };
  const manifestPath = join(work, 'manifest.json');
  await writeFile(manifestPath, JSON.stringify(manifest));
  const tls = await writeCert(work, bed ? '10.77.0.1' : '127.0.0.1');
  const keys = generateTicketKeys();
  const publicKey = publicKeyToRaw(keys.publicKey);
  const ticket = signTicket(keys.privateKey, { user: 'bench', sha256: manifest.sha256, expiresAt: Date.now() + 3600_000 });
  const cap = (capMbit * 1e6) / 8;

  const sharer = startLineChild(inBed(bed ? 's' : null, [...node, join(here, 'serve.ts'), JSON.stringify({
    file, manifest: manifestPath, cert: tls.cert, key: tls.key, publicKey, host: bed ? '10.77.0.1' : '127.0.0.1', uploadBytesPerSecond: cap,
  })]));
  children.push(sharer);
  const sharerUrl = String((await sharer.next(60_000)).url);

  const peers: Array<{ id: string; child: LineChild; url: string }> = [];
  for (let k = 1; k <= n; k++) {
    const host = bed ? `10.77.0.${10 + k}` : '127.0.0.1';
    const child = startLineChild(inBed(bed ? `r${k}` : null, [...node, join(here, 'peer.ts'), JSON.stringify({
      manifest: manifestPath, destDir: join(work, `r${k}`), cert: tls.cert, key: tls.key, publicKey, ticket, host, streams, uploadBytesPerSecond: cap,
    })]));
    children.push(child);
    peers.push({ id: `r${k}`, child, url: '' });
  }
  for (const p of peers) p.url = String((await p.child.next(60_000)).url);
  console.log(`sharer and ${n} receivers up (${bed ? 'bed' : 'loopback'}), every upload capped at ${capMbit} Mbit/s, ${manifest.pieces.length} pieces of ${pieceKiB} KiB, ${streams} streams per holder`);

  const t0 = performance.now();
  const all = { id: 's', url: sharerUrl, fingerprint: tls.fingerprint };
  for (const p of peers) {
    const others = peers.filter((o) => o !== p).map((o) => ({ id: o.id, url: o.url, fingerprint: tls.fingerprint }));
    p.child.send({ holders: [all, ...others] });
  }
  const results = await Promise.all(peers.map(async (p) => ({ id: p.id, r: await p.child.next(), at: performance.now() - t0 })));
  const allMs = Math.max(...results.map((x) => x.at));
  const ideal = (manifest.size * 8) / (capMbit * 1e6);
  let fromSharer = 0;
  let total = 0;
  for (const { id, r, at } of results) {
    const per = r.bytesPerHolder as Record<string, number>;
    const sum = Object.values(per).reduce((a, b) => a + b, 0);
    fromSharer += per.s ?? 0;
    total += sum;
    console.log(`  ${id}: ${(at / 1000).toFixed(2)} s, ${(((per.s ?? 0) / sum) * 100).toFixed(0)}% from the sharer, peak RSS ${(Number(r.maxRssKiB) / 1024).toFixed(0)} MiB, CPU ${(Number(r.cpuMs) / 1000).toFixed(2)} s`);
  }
  console.log(`\nall ${n} hold the file after ${(allMs / 1000).toFixed(2)} s`);
  console.log(`size ÷ cap = ${ideal.toFixed(2)} s → ${(allMs / 1000 / ideal).toFixed(2)}× (goal ≤ 2.5×); one server for ${n} needs ≈ ${(n * ideal).toFixed(2)} s (${n}×)`);
  console.log(`bytes from the sharer: ${((fromSharer / total) * 100).toFixed(0)}% of all received (${(fromSharer / manifest.size).toFixed(2)} copies of the file)`);
} finally {
  for (const c of children) c.close();
  await new Promise((r) => setTimeout(r, 500));
  await rm(work, { recursive: true, force: true });
}
