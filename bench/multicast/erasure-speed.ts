/**
 * Speed of the multicast repair erasure code on 64 KiB chunks (65,552 sealed bytes, k = 46): encode 3 parity
 * fragments, recover 2 missing fragments. MB/s are of chunk bytes. Runs the loaded backend; the parent runs
 * itself again with SHOAL_ERASURE=js for the JavaScript figures:
 *   flock /tmp/shoal-bench.lock node --import tsx bench/multicast/erasure-speed.ts
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeParity, erasureBackend, recoverFragments } from '../../src/transfer/multicast/erasure.ts';

const L = 65552, k = 46, size = Math.ceil(L / k);
const chunks = Array.from({ length: 64 }, () => randomBytes(L));
const parity = new Uint8Array(3 * size);

function rate(seconds: number, run: (c: Buffer) => void): number {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) for (const c of chunks) { run(c); n++; }
  return (n * L) / ((performance.now() - t0) / 1000) / 1e6;
}

rate(0.2, (c) => encodeParity(c, k, 0, 3, parity));
const enc = rate(1, (c) => encodeParity(c, k, 0, 3, parity));
encodeParity(chunks[0], k, 0, 3, parity);
const par = [{ index: 1, bytes: parity.subarray(size, 2 * size) }, { index: 2, bytes: parity.subarray(2 * size) }];
const missing = [7, k - 1];
const rec = rate(1, () => recoverFragments(chunks[0], k, missing, par));
console.log(`${erasureBackend().padEnd(6)}: encode 3 parity ${enc.toFixed(0)} MB/s, recover 2 missing ${rec.toFixed(0)} MB/s (of 64 KiB chunks, k=${k})`);

if (erasureBackend() === 'native' && !process.env.SHOAL_ERASURE_BENCH_CHILD) {
  for (const env of [{ SHOAL_ERASURE_NO_AVX2: '1' }, { SHOAL_ERASURE: 'js' }]) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { env: { ...process.env, ...env, SHOAL_ERASURE_BENCH_CHILD: '1' }, encoding: 'utf8' });
    process.stdout.write(env.SHOAL_ERASURE_NO_AVX2 ? out.replace('native:', 'scalar:') : out);
  }
}
