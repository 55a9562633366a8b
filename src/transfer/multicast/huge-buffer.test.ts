import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { createSlabPool, hugeBuffer, hugeBuffersLoaded } from './huge-buffer.ts';

const anonHugeKiB = (): number => Number(/AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);
const thp = (): string => {
  const f = '/sys/kernel/mm/transparent_hugepage/enabled';
  return existsSync(f) ? (/\[(\w+)\]/.exec(readFileSync(f, 'utf8'))?.[1] ?? 'never') : 'absent';
};

describe('huge-page buffers', () => {
  it('gives a buffer of the size asked, whole and writable, and ordinary ones below 2 MiB', () => {
    for (const size of [1, 4096, 2 * 1024 * 1024 - 1, 2 * 1024 * 1024, 5 * 1024 * 1024 + 3]) {
      const b = hugeBuffer(size);
      assert.equal(b.length, size);
      b.fill(0x5a);
      assert.equal(b[0], 0x5a);
      assert.equal(b[size - 1], 0x5a);
    }
  });
  it('backs a large buffer with huge pages where the kernel allows them', (t) => {
    if (!hugeBuffersLoaded()) return t.skip('build/shoal_mem.node is not built here (npm install builds it on Linux)');
    const mode = thp();
    if (mode !== 'always' && mode !== 'madvise') return t.skip(`transparent huge pages are "${mode}" on this kernel`);
    const before = anonHugeKiB();
    const b = hugeBuffer(16 * 1024 * 1024);
    b.fill(1);
    const gained = anonHugeKiB() - before;
    // The kernel may fall back to small pages when memory is fragmented; most of 16 MiB should be huge.
    assert.ok(gained >= 8 * 1024, `only ${gained} KiB of huge pages for a 16 MiB buffer (THP ${mode})`);
  });
  it('pools slots of one slab: distinct until all are out, reused once each when given back', () => {
    const pool = createSlabPool(1024 * 1024 + 16, 3);
    const a = pool.take()!;
    const b = pool.take()!;
    const c = pool.take()!;
    assert.equal(pool.take(), null, 'three slots, no fourth');
    for (const [k, s] of [a, b, c].entries()) {
      assert.equal(s.length, 1024 * 1024 + 16);
      s.fill(k + 1);
    }
    assert.deepEqual([a[a.length - 1], b[0], b[b.length - 1], c[0]], [1, 2, 2, 3], 'slots do not overlap');
    assert.equal(pool.give(Buffer.alloc(16)), false, 'a buffer from elsewhere is not taken');
    assert.equal(pool.give(b.subarray(100, 200)), true, 'a view into a slot gives the slot back');
    assert.equal(pool.give(b), true);
    const again = pool.take()!;
    assert.equal(again.byteOffset, b.byteOffset, 'the slot given back is taken again, whole');
    assert.equal(again.length, b.length);
    assert.equal(pool.take(), null, 'given back twice, pooled once');
    assert.equal(createSlabPool(4096, 0).take(), null);
  });
});
