/**
 * CPU of assembling a 256 MiB file through PartialFile the way the multicast receiver does (64 KiB writeAt, then a
 * check of each 4 MiB piece), then finalize(), in /dev/shm. Compares trees, e.g. a checkout of an older commit:
 *   node --import tsx bench/multicast/partial-file-cpu.ts ROOT [disk|bytes]
 * disk: verifyPiece(i) reads each piece back; bytes: the piece bytes are handed over (what the receiver now does).
 */
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
const root = process.argv[2];
const mode = process.argv[3] ?? 'bytes';
const { openPartialFile } = await import(join(root, 'src/transfer/pieces/partial-file.ts'));
const { silentLogger } = await import(join(root, 'src/logger.ts'));
const size = 256 * 1024 * 1024, ps = 4 * 1024 * 1024, cs = 64 * 1024;
const data = randomBytes(size);
const pieces: string[] = [];
for (let o = 0; o < size; o += ps) pieces.push(createHash('sha256').update(data.subarray(o, o + ps)).digest('hex'));
const manifest = { name: 'x.bin', size, pieceSize: ps, pieces, sha256: createHash('sha256').update(data).digest('hex') };
const dir = await mkdtemp('/dev/shm/mc-pf-');
const c0 = process.cpuUsage(); const t0 = performance.now();
const pf = await openPartialFile({ manifest, destDir: dir, logger: silentLogger });
let finT = 0;
for (let p = 0; p < pieces.length; p++) {
  for (let o = p * ps; o < (p + 1) * ps; o += cs) await pf.writeAt(o, data.subarray(o, o + cs));
  const ok = mode === 'bytes' ? await pf.verifyPiece(p, data.subarray(p * ps, (p + 1) * ps)) : await pf.verifyPiece(p);
  if (!ok) throw new Error('verify failed');
}
const tf = performance.now();
await pf.finalize();
finT = performance.now() - tf;
const c = process.cpuUsage(c0);
console.log(`${mode}: total ${(performance.now() - t0).toFixed(0)} ms, CPU ${((c.user + c.system) / 1000).toFixed(0)} ms, finalize ${finT.toFixed(0)} ms`);
await rm(dir, { recursive: true, force: true });
