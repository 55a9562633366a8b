import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../logger.ts';
import { isShoalError } from '../../protocol/errors.ts';
import type { Manifest } from '../../protocol/api.ts';
import { choosePieceSize, hashFile } from './hash-file.ts';
import { openPartialFile } from './partial-file.ts';
import { Bitfield } from './bitfield.ts';
import { pieceRange } from './piece-map.ts';
import { directIoAvailable } from './direct-io.ts';
import { hugeBuffer, hugeBuffersLoaded } from '../multicast/huge-buffer.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shoal-partial-'));
  dirs.push(d);
  return d;
}

async function sample(size: number, pieceSize: number, name = 'data.bin'): Promise<{ data: Buffer; manifest: Manifest }> {
  const dir = await tempDir();
  const data = randomBytes(size);
  const src = join(dir, 'src');
  await writeFile(src, data);
  const content = await hashFile(src, pieceSize);
  return { data, manifest: { name, ...content } };
}

function piece(data: Buffer, m: Manifest, i: number): Buffer {
  const { offset, length } = pieceRange(m, i);
  return data.subarray(offset, offset + length);
}

describe('hashFile', () => {
  it('computes the whole hash and one hash per piece in one pass', async () => {
    const { data, manifest } = await sample(10_000, 4096);
    assert.equal(manifest.size, 10_000);
    assert.equal(manifest.pieces.length, 3);
    assert.equal(manifest.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(manifest.pieces[2], createHash('sha256').update(data.subarray(8192)).digest('hex'));
  });
  it('stops with ABORTED when its signal fires', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'big'), randomBytes(4 * 1024 * 1024));
    await assert.rejects(hashFile(join(dir, 'big'), 65536, AbortSignal.abort()), (e) => isShoalError(e, 'ABORTED'));
  });
  it('picks a piece size that keeps the piece count within the limit', () => {
    assert.equal(choosePieceSize(1000), 4 * 1024 * 1024);
    assert.ok(Math.ceil((200 * 1024 ** 3) / choosePieceSize(200 * 1024 ** 3)) <= 16384);
  });
  it('gives an empty file one empty piece', async () => {
    const { manifest } = await sample(0, 4096);
    assert.equal(manifest.pieces.length, 1);
    assert.equal(manifest.pieces[0], manifest.sha256);
  });
});

describe('Bitfield', () => {
  it('round-trips through base64url and counts bits', () => {
    const b = new Bitfield(13);
    b.set(0);
    b.set(12);
    const c = Bitfield.fromBase64Url(13, b.toBase64Url());
    assert.deepEqual(c.indexes(), [0, 12]);
    assert.equal(c.count, 2);
    assert.deepEqual(c.missing().length, 11);
  });
  it('refuses bits set past its length', () => {
    assert.throws(() => new Bitfield(9, Uint8Array.from([0, 0x40])), (e) => isShoalError(e, 'BAD_REQUEST'));
  });
});

describe('PartialFile', () => {
  it('assembles pieces written out of order and finalizes to the right bytes', async () => {
    const { data, manifest } = await sample(50_000, 8192);
    const dest = await tempDir();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (const i of [3, 0, 6, 1, 5, 2, 4]) assert.equal(await pf.writePiece(i, piece(data, manifest, i)), true);
    assert.equal(pf.complete, true);
    assert.equal(pf.bytesVerified, 50_000);
    assert.equal(pf.path, pf.tempPath);
    const path = await pf.finalize();
    assert.equal(path, join(dest, 'data.bin'));
    assert.equal(pf.path, path);
    assert.deepEqual(await readFile(path), data);
    assert.deepEqual((await readdir(dest)).sort(), ['data.bin']);
  });

  it('refuses a corrupt piece without writing or marking it', async () => {
    const { data, manifest } = await sample(20_000, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    const bad = Buffer.from(piece(data, manifest, 1));
    bad[100] ^= 1;
    assert.equal(await pf.writePiece(1, bad), false);
    assert.equal(pf.has(1), false);
    assert.deepEqual(pf.missing(), [0, 1, 2]);
    await pf.abort();
  });

  it('takes pieces streamed in parts as they arrive and finalizes to the right bytes', async () => {
    const { data, manifest } = await sample(50_000, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    for (const i of [4, 0, 6, 2, 1, 5, 3]) {
      const bytes = piece(data, manifest, i);
      const w = pf.pieceWriter(i);
      // Parts of uneven size from one reused buffer, as the piece client hands them over.
      const scratch = Buffer.alloc(3000);
      for (let at = 0; at < bytes.length; at += 3000) {
        const n = Math.min(3000, bytes.length - at);
        bytes.copy(scratch, 0, at, at + n);
        w.write(scratch.subarray(0, n), at);
      }
      assert.equal(pf.has(i), false, 'nothing is recorded before finish');
      assert.equal(await w.finish(), true);
      assert.equal(pf.has(i), true);
    }
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('refuses a streamed piece whose bytes do not match, records nothing and takes a good copy after', async () => {
    const { data, manifest } = await sample(20_000, 8192);
    const dest = await tempDir();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    const bad = Buffer.from(piece(data, manifest, 1));
    bad[5000] ^= 1;
    const w = pf.pieceWriter(1);
    w.write(bad.subarray(0, 4000), 0);
    w.write(bad.subarray(4000), 4000);
    assert.equal(await w.finish(), false);
    assert.equal(pf.has(1), false);
    // Half a piece and a process killed: reopened, the piece is still missing.
    pf.pieceWriter(0).write(piece(data, manifest, 0).subarray(0, 100), 0);
    const again = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    assert.deepEqual(again.missing(), [0, 1, 2]);
    for (const i of again.missing()) {
      const good = again.pieceWriter(i);
      good.write(piece(data, manifest, i), 0);
      assert.equal(await good.finish(), true);
    }
    assert.deepEqual(await readFile(await again.finalize()), data);
    await pf.close().catch(() => undefined);
  });

  it('never lets a streamed piece overwrite one already verified', async () => {
    const { data, manifest } = await sample(20_000, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    const late = pf.pieceWriter(1);
    late.write(Buffer.alloc(100, 0xee), 0);
    // An end-game copy verifies first; the stream still running on another connection goes on sending junk.
    assert.equal(await pf.writePiece(1, piece(data, manifest, 1)), true);
    late.write(Buffer.alloc(8092, 0xee), 100);
    assert.equal(await late.finish(), true, 'the piece is verified, whoever wrote it');
    await pf.writePiece(0, piece(data, manifest, 0));
    await pf.writePiece(2, piece(data, manifest, 2));
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('refuses streamed bytes out of order or past the end of the piece', async () => {
    const { manifest } = await sample(20_000, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    const w = pf.pieceWriter(2); // the last piece: 3616 bytes
    assert.throws(() => w.write(Buffer.alloc(10), 5), (e) => isShoalError(e, 'BAD_REQUEST'));
    w.write(Buffer.alloc(3000), 0);
    assert.throws(() => w.write(Buffer.alloc(1000), 3000), (e) => isShoalError(e, 'BAD_REQUEST'));
    await assert.rejects(w.finish(), (e) => isShoalError(e, 'BAD_REQUEST'));
    assert.throws(() => pf.pieceWriter(3), (e) => isShoalError(e, 'BAD_REQUEST'));
    await pf.abort();
  });

  it('resumes verified pieces from the sidecar after reopening', async () => {
    const { data, manifest } = await sample(40_000, 8192);
    const dest = await tempDir();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    await pf.writePiece(0, piece(data, manifest, 0));
    await pf.writePiece(3, piece(data, manifest, 3));
    // Simulate a crash: no close(), just open again from another handle.
    const again = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    assert.equal(again.resumedCount, 2);
    assert.deepEqual(again.missing(), [1, 2, 4]);
    for (const i of again.missing()) await again.writePiece(i, piece(data, manifest, i));
    assert.deepEqual(await readFile(await again.finalize()), data);
    await pf.close().catch(() => undefined);
  });

  it('takes raw writes at any offset and verifies pieces from disk', async () => {
    const { data, manifest } = await sample(30_000, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    for (let off = 0; off < data.length; off += 5000) await pf.writeAt(off, data.subarray(off, off + 5000));
    for (let i = 0; i < pf.pieceCount; i++) assert.equal(await pf.verifyPiece(i), true);
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('does not verify a piece whose bytes on disk are wrong', async () => {
    const { data, manifest } = await sample(16_384, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    const bad = Buffer.from(data);
    bad[9000] ^= 0xff;
    await pf.writeAt(0, bad);
    assert.equal(await pf.verifyPiece(0), true);
    assert.equal(await pf.verifyPiece(1), false);
    assert.deepEqual(pf.missing(), [1]);
    await pf.abort();
  });

  it('finds bytes that no longer match their bits at finalize and forgets only those pieces', async () => {
    const { data, manifest } = await sample(40_000, 8192);
    const dest = await tempDir();
    const first = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (let i = 0; i < first.pieceCount; i++) await first.writePiece(i, piece(data, manifest, i));
    await first.close();
    // What a power loss can leave behind: the sidecar says verified, the bytes on disk are not. The process
    // that comes back has no running hash, so finalize() reads the whole file.
    const fh = await open(first.tempPath, 'r+');
    await fh.write(Buffer.alloc(10), 0, 10, 8192 * 2 + 5);
    await fh.close();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    assert.equal(pf.resumedCount, pf.pieceCount);
    await assert.rejects(pf.finalize(), (e) => isShoalError(e, 'HASH_MISMATCH'));
    assert.deepEqual(pf.missing(), [2]);
    await pf.writePiece(2, piece(data, manifest, 2));
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('verifies pieces from bytes handed over, in any order, and still checks the whole file', async () => {
    const { data, manifest } = await sample(100_000, 4096);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    await pf.writeAt(0, data);
    const order = [...Array(pf.pieceCount).keys()].sort(() => Math.random() - 0.5);
    // Some pieces verified from disk, the rest from bytes; a wrong buffer is refused and not marked.
    const wrong = Buffer.from(piece(data, manifest, order[0]));
    wrong[0] ^= 1;
    assert.equal(await pf.verifyPiece(order[0], wrong), false);
    assert.equal(pf.has(order[0]), false);
    for (const [k, i] of order.entries()) assert.equal(await (k % 3 === 0 ? pf.verifyPiece(i) : pf.verifyPiece(i, piece(data, manifest, i))), true);
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('accepts authenticated pieces without their own hash, yet never places a file whose bytes are wrong', async () => {
    const { data, manifest } = await sample(100_000, 4096);
    const dest = await tempDir();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    // A member holding the transfer key seals a wrong piece 7: the chunk check cannot tell, the whole file can.
    const forged = Buffer.from(data);
    forged[pieceRange(manifest, 7).offset + 10] ^= 0xff;
    await pf.writeAt(0, forged);
    for (let i = pf.pieceCount - 1; i >= 0; i--) await (i % 2 ? pf.acceptPiece(i) : pf.acceptPiece(i, piece(forged, manifest, i)));
    assert.equal(pf.complete, true);
    await assert.rejects(pf.finalize(), (e) => isShoalError(e, 'HASH_MISMATCH'));
    assert.deepEqual(pf.missing(), [7], 'only the forged piece is forgotten');
    assert.deepEqual((await readdir(dest)).filter((n) => !n.startsWith('.')), [], 'nothing placed under the real name');
    assert.equal(await pf.writePiece(7, piece(data, manifest, 7)), true);
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('keeps lent piece buffers until the running hash has read them, then hands each back once', async () => {
    const { data, manifest } = await sample(100_000, 4096);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    await pf.writeAt(0, data);
    const released: number[] = [];
    const lend = (i: number): [Uint8Array, (b: Uint8Array) => void] => {
      const own = Buffer.from(piece(data, manifest, i));
      return [own, (b) => {
        assert.equal(b, own, 'the lent buffer itself comes back');
        released.push(i);
        b.fill(0); // the caller reuses it at once: the running hash must be done with it
      }];
    };
    for (let i = pf.pieceCount - 1; i >= 1; i--) await pf.acceptPiece(i, ...lend(i));
    assert.deepEqual(released, [], 'pieces ahead of the running hash are held as lent, not copied and handed back');
    await pf.acceptPiece(0, ...lend(0));
    assert.deepEqual(released, [...Array(pf.pieceCount).keys()], 'each handed back once, as the hash reaches it');
    await pf.acceptPiece(3, ...lend(3));
    assert.deepEqual(released.slice(pf.pieceCount), [3], 'a piece already held is handed back at once');
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('hands lent buffers back when the partial file is closed before the running hash reaches them', async () => {
    const { data, manifest } = await sample(40_000, 4096);
    const dest = await tempDir();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    await pf.writeAt(0, data);
    const released: number[] = [];
    for (const i of [5, 7]) await pf.acceptPiece(i, Buffer.from(piece(data, manifest, i)), () => released.push(i));
    assert.equal(released.length, 0);
    await pf.close();
    assert.deepEqual(released.sort((a, b) => a - b), [5, 7]);
    await assert.rejects(pf.acceptPiece(1, Buffer.from(piece(data, manifest, 1)), () => released.push(1)));
    assert.deepEqual(released.slice(2), [1], 'a closed file hands the buffer straight back');
    const again = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    assert.deepEqual(again.missing().filter((i) => i === 5 || i === 7), [], 'the accepted pieces stayed recorded');
    await again.abort();
  });

  it('resumes a partial whose running hash was lost and finalizes to the right bytes', async () => {
    const { data, manifest } = await sample(50_000, 4096);
    const dest = await tempDir();
    const first = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (let i = 0; i < 6; i++) await first.writePiece(i, piece(data, manifest, i));
    await first.writePiece(9, piece(data, manifest, 9));
    await first.close();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (const i of pf.missing().reverse()) await pf.writePiece(i, piece(data, manifest, i));
    assert.deepEqual(await readFile(await pf.finalize()), data);
  });

  it('refuses to finalize while pieces are missing', async () => {
    const { data, manifest } = await sample(16_384, 8192);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger });
    await pf.writePiece(0, piece(data, manifest, 0));
    await assert.rejects(pf.finalize(), (e) => isShoalError(e, 'CONFLICT'));
    await pf.abort();
  });

  it('keeps both files when the name exists with other content, and reuses an identical one', async () => {
    const { data, manifest } = await sample(10_000, 4096, 'report.pdf');
    const dest = await tempDir();
    await writeFile(join(dest, 'report.pdf'), 'someone else');
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (let i = 0; i < pf.pieceCount; i++) await pf.writePiece(i, piece(data, manifest, i));
    assert.equal(await pf.finalize(), join(dest, 'report (2).pdf'));
    assert.equal(await readFile(join(dest, 'report.pdf'), 'utf8'), 'someone else');
    assert.deepEqual(await readFile(join(dest, 'report (2).pdf')), data);

    const again = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (let i = 0; i < again.pieceCount; i++) await again.writePiece(i, piece(data, manifest, i));
    assert.equal(await again.finalize(), join(dest, 'report (2).pdf'));
    assert.deepEqual((await readdir(dest)).sort(), ['report (2).pdf', 'report.pdf']);
  });

  it('never writes through a symbolic link that holds the final name', async () => {
    const { data, manifest } = await sample(10_000, 4096, 'target.bin');
    const dest = await tempDir();
    const outside = join(await tempDir(), 'outside.bin');
    await writeFile(outside, 'untouched');
    await symlink(outside, join(dest, 'target.bin'));
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    for (let i = 0; i < pf.pieceCount; i++) await pf.writePiece(i, piece(data, manifest, i));
    assert.equal(await pf.finalize(), join(dest, 'target (2).bin'));
    assert.equal(await readFile(outside, 'utf8'), 'untouched');
  });

  it('abort removes the temp file and its sidecar', async () => {
    const { data, manifest } = await sample(10_000, 4096);
    const dest = await tempDir();
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger });
    await pf.writePiece(0, piece(data, manifest, 0));
    assert.equal((await readdir(dest)).length, 2);
    await pf.abort();
    assert.deepEqual(await readdir(dest), []);
  });
});

describe('direct writes', () => {
  /** Whether the file system under `dir` opens files with O_DIRECT (tmpfs before Linux 6.6 does not). */
  async function takesDirect(dir: string): Promise<boolean> {
    try {
      await (await open(join(dir, 'probe'), constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT)).close();
      return true;
    } catch {
      return false;
    } finally {
      await rm(join(dir, 'probe'), { force: true });
    }
  }
  /** `bytes` copied into a page-aligned buffer (from a mapping), or `shift` bytes past a page boundary. */
  function placed(bytes: Uint8Array, shift = 0): Buffer {
    const b = hugeBuffer(4 * 1024 * 1024).subarray(shift, shift + bytes.length);
    b.set(bytes);
    return b;
  }

  it('writes the whole pages of aligned buffers past the page cache, the rest through it, and the file is exact', async (t) => {
    if (!hugeBuffersLoaded() || !directIoAvailable()) return t.skip('build/shoal_mem.node is not built here, or SHOAL_DIRECT_IO=off');
    const mib = 1024 * 1024;
    const { data, manifest } = await sample(5 * mib + 5000, mib);
    const dest = await tempDir();
    const direct = await takesDirect(dest);
    if (!direct) t.diagnostic(`the file system of ${dest} refuses O_DIRECT: every write must go through the page cache`);
    const pf = await openPartialFile({ manifest, destDir: dest, logger: silentLogger, directIo: true });
    // Bytes already in the page cache where a piece will land (as a spilled chunk's ciphertext is): the direct
    // write of the piece must win over them, on disk and for a read-back.
    const { offset: at3 } = pieceRange(manifest, 3);
    await pf.writeAt(at3 + 100, randomBytes(70_000));
    for (let i = 0; i < manifest.pieces.length; i++) {
      const bytes = placed(piece(data, manifest, i), i === 2 ? 1 : 0); // piece 2 is not page-aligned in memory
      await pf.writeAt(pieceRange(manifest, i).offset, bytes);
    }
    // 4 whole pieces and the first page of the 5000-byte tail; piece 2 and the tail's last 904 bytes are buffered.
    assert.equal(pf.bytesWrittenDirect, direct ? 4 * mib + 4096 : 0);
    for (let i = 0; i < manifest.pieces.length; i++) assert.equal(await pf.verifyPiece(i), true, `piece ${i} read back`);
    const path = await pf.finalize();
    assert.ok((await readFile(path)).equals(data));
  });

  it('writes everything through the page cache with SHOAL_DIRECT_IO=off', async (t) => {
    if (!hugeBuffersLoaded()) return t.skip('build/shoal_mem.node is not built here');
    const before = process.env.SHOAL_DIRECT_IO;
    process.env.SHOAL_DIRECT_IO = 'off';
    t.after(() => {
      if (before === undefined) delete process.env.SHOAL_DIRECT_IO;
      else process.env.SHOAL_DIRECT_IO = before;
    });
    const { data, manifest } = await sample(2 * 1024 * 1024, 1024 * 1024);
    const pf = await openPartialFile({ manifest, destDir: await tempDir(), logger: silentLogger, directIo: true });
    for (let i = 0; i < manifest.pieces.length; i++) {
      await pf.writeAt(pieceRange(manifest, i).offset, placed(piece(data, manifest, i)));
      await pf.acceptPiece(i);
    }
    assert.equal(pf.bytesWrittenDirect, 0);
    assert.ok((await readFile(await pf.finalize())).equals(data));
  });
});
