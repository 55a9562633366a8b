/**
 * The multicast repair erasure code: parity encoded from a sealed chunk brings back any set of missing data
 * fragments (random chunk sizes and fragment counts, k = 1 and 255, short and empty last fragments), the native
 * module and the JavaScript code give the same bytes, and bad input throws RangeError without touching the chunk.
 * The JavaScript backend (SHOAL_ERASURE=js) and the native scalar kernel (SHOAL_ERASURE_NO_AVX2=1) run this
 * whole file again in child processes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeParity, erasureBackend, maxParity, recoverFragments } from '../../src/transfer/multicast/erasure.ts';

/** Deterministic PRNG (mulberry32), so a failing case can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, list: T[], n: number): T[] {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}

interface Case { L: number; k: number; missing: number[]; parityIdx: number[] }

function randomCase(rand: () => number, i: number): Case {
  const fixed: Array<[number, number]> = [[65552, 46], [1, 1], [300, 1], [255, 255], [1000, 255], [65552, 255], [47, 46], [93, 46], [5, 4], [10, 4]];
  const [L, k] = i < fixed.length ? fixed[i] : (() => {
    const kk = 1 + Math.floor(rand() * 255);
    return [kk + Math.floor(rand() * (rand() < 0.5 ? 3000 : 70000)), kk];
  })();
  const size = Math.ceil(L / k);
  const frags = Array.from({ length: k }, (_, f) => f);
  const maxM = Math.min(k, maxParity(k), 8);
  const m = 1 + Math.floor(rand() * maxM);
  const missing = pick(rand, frags, m);
  if (i % 3 === 0 && !missing.includes(k - 1) && Math.min(L, k * size) > (k - 1) * size) missing[0] = k - 1; // the short last fragment
  const parityIdx = pick(rand, Array.from({ length: maxParity(k) }, (_, j) => j), m + Math.floor(rand() * 2) > maxParity(k) ? m : m + Math.floor(rand() * 2));
  return { L, k, missing, parityIdx };
}

/** Runs every case and returns a digest of all parity and recovered bytes (to compare backends). */
function runCases(seed: number, n: number): string {
  const rand = rng(seed);
  const digest = createHash('sha256');
  for (let c = 0; c < n; c++) {
    const { L, k, missing, parityIdx } = randomCase(rand, c);
    const size = Math.ceil(L / k);
    const sealed = new Uint8Array(L);
    for (let t = 0; t < L; t++) sealed[t] = (rand() * 256) | 0;
    const original = sealed.slice();
    const parity = parityIdx.map((index) => {
      const bytes = new Uint8Array(size);
      encodeParity(sealed, k, index, 1, bytes);
      return { index, bytes };
    });
    // The same parity from one encode call over a run of indices.
    const from = parityIdx[0];
    const count = Math.min(3, maxParity(k) - from);
    const run = new Uint8Array(count * size + 7);
    encodeParity(sealed, k, from, count, run);
    const one = new Uint8Array(size);
    for (let r = 0; r < count; r++) {
      encodeParity(sealed, k, from + r, 1, one);
      assert.deepEqual(run.subarray(r * size, (r + 1) * size), one, `L=${L} k=${k} parity ${from + r}`);
    }
    digest.update(run.subarray(0, count * size));
    assert.deepEqual(sealed, original, 'encoding does not change the chunk');
    for (const f of missing) sealed.fill(0xa5, f * size, Math.min(L, (f + 1) * size));
    recoverFragments(sealed, k, missing, pick(rand, parity, parity.length));
    assert.ok(Buffer.from(sealed).equals(Buffer.from(original)), `L=${L} k=${k} missing=${missing} parity=${parityIdx}`);
    digest.update(sealed);
  }
  return digest.digest('hex');
}

const CASES = 300;

/** Runs this file in a child process with `env` (its whole suite runs there too, so a failure fails this test)
 * and returns the backend and digest it printed for the comparison cases. */
function childDigest(env: Record<string, string>): string {
  const text = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, ...env, SHOAL_ERASURE_DIGEST: '7:120' },
    encoding: 'utf8',
  });
  const line = text.split('\n').find((l) => l.startsWith('digest '));
  assert.ok(line, `child printed no digest:\n${text}`);
  return line.slice(7);
}

describe('erasure code', () => {
  it('recovers any missing data fragments from as many parity fragments', () => {
    runCases(1, CASES);
  });

  it('gives the same parity and recoveries natively and in JavaScript', (t) => {
    if (erasureBackend() !== 'native') {
      console.log('# skipping native/JS comparison: native erasure backend not loaded (build/shoal_erasure.node not built, or SHOAL_ERASURE=js)');
      t.skip('native module not built');
      return;
    }
    if (process.env.SHOAL_ERASURE_DIGEST) return; // already the child of this comparison
    const here = runCases(7, 120);
    assert.equal(childDigest({ SHOAL_ERASURE: 'js' }), `js ${here}`, 'JavaScript backend');
    assert.equal(childDigest({ SHOAL_ERASURE_NO_AVX2: '1' }), `native ${here}`, 'native scalar kernel');
  });

  it('matches parity computed independently from the definition (L = 5, k = 3, short last fragment)', () => {
    // d0 = 01 02, d1 = 03 04, d2 = 05 (00); parity j = Σ_i d_i / ((255 − j) ⊕ i) in GF(2^8) mod 0x11d.
    const sealed = Uint8Array.of(1, 2, 3, 4, 5);
    const out = new Uint8Array(6);
    encodeParity(sealed, 3, 0, 3, out);
    assert.deepEqual(out, Uint8Array.of(0x5b, 0x02, 0xfa, 0x2f, 0x50, 0x02));
    const back = Uint8Array.of(9, 9, 3, 4, 9);
    recoverFragments(back, 3, [2, 0], [{ index: 2, bytes: out.subarray(4, 6) }, { index: 0, bytes: out.subarray(0, 2) }]);
    assert.deepEqual(back, sealed);
  });

  it('maxParity is 256 − k for k in 1..255 and 0 outside', () => {
    assert.equal(maxParity(1), 255);
    assert.equal(maxParity(46), 210);
    assert.equal(maxParity(255), 1);
    for (const k of [0, -1, 256, 1.5, NaN]) assert.equal(maxParity(k), 0);
  });

  it('treats an empty missing list as a no-op', () => {
    const sealed = randomBytes(100);
    const copy = Buffer.from(sealed);
    recoverFragments(sealed, 10, [], []);
    assert.ok(copy.equals(sealed));
  });

  describe('rejects bad input with RangeError and leaves the chunk unchanged', () => {
    const L = 1000, k = 10, size = 100;
    const base = randomBytes(L);
    const parity = [0, 1, 2].map((index) => {
      const bytes = new Uint8Array(size);
      encodeParity(base, k, index, 1, bytes);
      return { index, bytes };
    });
    const bad: Array<[string, (s: Uint8Array) => void]> = [
      ['k = 0', (s) => encodeParity(s, 0, 0, 1, new Uint8Array(L))],
      ['k = 256', (s) => encodeParity(s, 256, 0, 1, new Uint8Array(L))],
      ['k not an integer', (s) => recoverFragments(s, 2.5, [0], parity)],
      ['chunk shorter than k', (s) => encodeParity(s.subarray(0, 5), 6, 0, 1, new Uint8Array(10))],
      ['out too short', (s) => encodeParity(s, k, 0, 3, new Uint8Array(3 * size - 1))],
      ['parity past 256 − k', (s) => encodeParity(s, k, 245, 2, new Uint8Array(2 * size))],
      ['negative parity index', (s) => encodeParity(s, k, -1, 1, new Uint8Array(size))],
      ['negative count', (s) => encodeParity(s, k, 0, -1, new Uint8Array(size))],
      ['missing index ≥ k', (s) => recoverFragments(s, k, [10], parity)],
      ['negative missing index', (s) => recoverFragments(s, k, [-1], parity)],
      ['duplicate missing index', (s) => recoverFragments(s, k, [3, 3], parity)],
      ['not enough parity', (s) => recoverFragments(s, k, [1, 2, 3, 4], parity)],
      ['duplicate parity index', (s) => recoverFragments(s, k, [1, 2], [parity[0], parity[0]])],
      ['parity index out of range', (s) => recoverFragments(s, k, [1], [{ index: 246, bytes: new Uint8Array(size) }])],
      ['parity fragment too short', (s) => recoverFragments(s, k, [1], [{ index: 0, bytes: new Uint8Array(size - 1) }])],
      ['more missing than k', (s) => recoverFragments(s.subarray(0, 2), 2, [0, 1, 0], parity)],
    ];
    for (const [name, call] of bad) {
      it(name, () => {
        const sealed = Buffer.from(base);
        assert.throws(() => call(sealed), RangeError);
        assert.ok(sealed.equals(base));
      });
    }
  });
});

// Child mode for the backend comparison: print the digest of the same cases under SHOAL_ERASURE=js.
if (process.env.SHOAL_ERASURE_DIGEST) {
  const [seed, n] = process.env.SHOAL_ERASURE_DIGEST.split(':').map(Number);
  console.log(`digest ${erasureBackend()} ${runCases(seed, n)}`);
}
