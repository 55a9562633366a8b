/**
 * Resumable assembly of one received file. Pieces are written at their offsets into a temporary file beside
 * the destination (`.<name>.<sha256 prefix>.shoal-part`); a sidecar (`….shoal-bits`, replaced atomically by
 * write-then-rename) records which pieces are verified. A process killed at any moment reopens the same
 * files and trusts the sidecar, so verified pieces are neither fetched nor hashed again. `finalize()` checks
 * the whole-file SHA-256 and moves the file to its final name without ever overwriting another file.
 *
 * The whole-file SHA-256 is kept running over the contiguous prefix of verified pieces (fed with the piece
 * bytes the writers hand over; pieces verified ahead of the prefix are kept in memory up to a budget, the rest
 * read back when the prefix reaches them), so finalize() hashes only what that running hash has not covered —
 * nothing after an in-order transfer, everything after a restart (the hash state is not persisted). Hashing a
 * 256 MiB file a second time at the end cost about 0.4 s of CPU on the critical path of every copy.
 *
 * Both the swarm downloader (`pieceWriter`, and `writePiece` for end-game copies) and the multicast receiver
 * (`writeAt` + `verifyPiece`) write here.
 * One PartialFile object per file per process: share it between writers rather than opening it twice.
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream, writeSync } from 'node:fs';
import { link, lstat, mkdir, open, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../../protocol/api.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { Logger } from '../../logger.ts';
import { Bitfield } from './bitfield.ts';
import { DIRECT_MIN_FILE_BYTES, directIoAvailable, directPrefix, openDirect } from './direct-io.ts';
import { checkManifest, pieceRange } from './piece-map.ts';
import { numberedName, safeBaseName } from './safe-base-name.ts';

export interface OpenPartialFileOptions {
  manifest: Manifest;
  /** Directory that receives the final file (created when missing). */
  destDir: string;
  /** Wanted file name; defaults to manifest.name. Reduced with safeBaseName (INVALID_NAME when refused). */
  name?: string;
  logger: Logger;
  /** fdatasync the data before every update of the resume state (default false). A killed process loses
   * nothing either way (the page cache survives it); after a power loss without it, a bit may cover bytes
   * that never reached the disk, which finalize() detects and repairs by re-checking pieces. Measured here:
   * 30 ms per 4 MiB piece, which would halve a single stream's rate. */
  durable?: boolean;
  /** Write page-aligned buffers past the page cache (O_DIRECT, see direct-io.ts) where the file system allows;
   * default: for files of 16 MiB or more, unless SHOAL_DIRECT_IO=off. */
  directIo?: boolean;
}

/** A file being received piece by piece. */
export interface PartialFile {
  readonly manifest: Manifest;
  readonly pieceCount: number;
  /** The safe base name the file will get (before any ` (2)` suffix). */
  readonly baseName: string;
  /** The temporary data file. */
  readonly tempPath: string;
  /** Where the bytes are now: the temp file, or the final file once finalized (what a piece server reads). */
  readonly path: string;
  /** Pieces that were already verified when the file was opened (resumed from the sidecar). */
  readonly resumedCount: number;
  /** Number of verified pieces. */
  readonly verifiedCount: number;
  /** Bytes in verified pieces. */
  readonly bytesVerified: number;
  /** True when every piece is verified. */
  readonly complete: boolean;
  /** True when piece `i` is verified. */
  has(i: number): boolean;
  /** Indexes of pieces not yet verified, ascending. */
  missing(): number[];
  /** A copy of the verified-pieces bitfield. */
  bitfield(): Bitfield;
  /** Bytes written past the page cache (O_DIRECT) so far. */
  readonly bytesWrittenDirect: number;
  /** Raw write at a byte offset (multicast chunks that do not align with pieces); bytes that fall inside
   * already-verified pieces are skipped. Nothing is marked: call verifyPiece afterwards. */
  writeAt(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Hashes piece `i` and records it as verified when good. Without `bytes` the piece is read back from the temp
   * file; with `bytes` (the piece's full content, which the caller has already written at the piece's offset
   * with writeAt) nothing is read. The caller may reuse `bytes` once the promise settles.
   */
  verifyPiece(i: number, bytes?: Uint8Array): Promise<boolean>;
  /**
   * Records piece `i` (already written with writeAt) as held without hashing it against its piece hash, for
   * bytes a transfer key already authenticated (multicast chunks are AES-GCM sealed by the coordinator); the
   * piece still feeds the running whole-file hash, so finalize() puts nothing in place that does not match the
   * manifest, and on a mismatch re-checks every piece and forgets the bad ones. Saves one SHA-256 pass over
   * the file (about 0.2 CPU-s per 256 MiB). `bytes` as in verifyPiece; with `release`, `bytes` are lent
   * instead: a piece verified ahead of the running hash is kept as it is (not copied) until the hash reaches
   * it, and `release(bytes)` is called once when they are no longer read (the caller must not reuse them
   * before; pieces still held when the file is closed are released then).
   */
  acceptPiece(i: number, bytes?: Uint8Array, release?: (bytes: Uint8Array) => void): Promise<void>;
  /** Hashes `bytes` in memory first; writes and records piece `i` only when the hash matches. While it writes,
   * any PieceWriter of the same piece leaves the piece alone. */
  writePiece(i: number, bytes: Uint8Array): Promise<boolean>;
  /** Receives piece `i` as its bytes arrive, with no piece-sized buffer: see PieceWriter. At most one writer
   * per piece at a time (the caller's rule); a writer of a piece already verified writes nothing. */
  pieceWriter(i: number): PieceWriter;
  /** Whole-file SHA-256 check, then atomic move to the final path, which is returned. Same name with other
   * content: `name (2).ext` (and so on); same name with the same content: the existing file is reused. */
  finalize(): Promise<string>;
  /** Flushes the sidecar and closes the temp file; the partial stays on disk for a later resume. */
  close(): Promise<void>;
  /** Closes and removes the temp file and its sidecar. */
  abort(): Promise<void>;
}

/** A piece received as its bytes arrive (PartialFile.pieceWriter). Nothing is recorded until finish() has
 * checked the hash, so a piece left half-written (a holder that fails, a process killed) is simply fetched again
 * and never served meanwhile. */
export interface PieceWriter {
  /** Writes the next `bytes` of the piece (`at` = bytes written so far) at once, synchronously, and hashes them:
   * the caller may reuse `bytes` on return, and a writer no longer called has no write in flight. Bytes out of
   * order or past the piece's end throw BAD_REQUEST; a disk error is thrown as it comes. While the piece is
   * verified or written whole by writePiece, the bytes are dropped instead. */
  write(bytes: Uint8Array, at: number): void;
  /** After the last byte: true when the piece is now verified (by this writer, or meanwhile by writePiece), false
   * when its bytes do not match its hash, null when writePiece took the piece over and has not verified it. */
  finish(): Promise<boolean | null>;
}

const MAGIC = Buffer.from('SHOALBF1', 'latin1');
/** Bytes of pieces verified ahead of the running whole-file hash kept in memory until it reaches them. */
const AHEAD_BUDGET_BYTES = 32 * 1024 * 1024;
/** Piece-sized buffers kept for reuse (the ahead budget's worth of 4 MiB pieces, and one being read back). */
const POOL_BUFFERS = 10;
const HEADER = MAGIC.length + 32 + 8 + 4 + 4;

/** Opens (or resumes) the partial file of `manifest` in `destDir`. */
export async function openPartialFile(options: OpenPartialFileOptions): Promise<PartialFile> {
  const { manifest, destDir } = options;
  checkManifest(manifest);
  const baseName = safeBaseName(options.name ?? manifest.name);
  const log = options.logger.child('pieces:partial');
  await mkdir(destDir, { recursive: true });
  const stem = `.${truncateUtf8(baseName, 150)}.${manifest.sha256.slice(0, 16)}`;
  const tempPath = join(destDir, `${stem}.shoal-part`);
  const bitsPath = join(destDir, `${stem}.shoal-bits`);
  const count = manifest.pieces.length;

  let bits = new Bitfield(count);
  const fh = await open(tempPath, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ShoalError(ErrorCode.INVALID_NAME, 'temporary path is not a regular file');
    const saved = await readSidecar(bitsPath, manifest, count).catch((err: unknown) => {
      log.warn('ignoring unreadable resume state', { path: bitsPath, err });
      return null;
    });
    // The data file must still be as long as the manifest says, or the bits cannot be trusted.
    if (saved && st.size === manifest.size) bits = saved;
    if (st.size !== manifest.size) await fh.truncate(manifest.size);
  } catch (err) {
    await fh.close();
    throw err;
  }
  if (bits.count > 0) log.info('resuming partial file', { name: baseName, verified: bits.count, pieces: count });
  const direct = (options.directIo ?? manifest.size >= DIRECT_MIN_FILE_BYTES) && directIoAvailable();
  return new PartialFileImpl(manifest, baseName, destDir, tempPath, bitsPath, fh, bits, options.durable ?? false, direct, log);
}

class PartialFileImpl implements PartialFile {
  readonly pieceCount: number;
  readonly resumedCount: number;
  #bits: Bitfield;
  #bytesVerified = 0;
  #gen = 0;
  #flushedGen = 0;
  #flushing: Promise<void> | null = null;
  #closed = false;
  #finalPath: string | null = null;
  /** Running whole-file SHA-256 over pieces [0, #hashed). */
  #whole = createHash('sha256');
  #hashed = 0;
  /** Copies of pieces verified ahead of #hashed (bounded by AHEAD_BUDGET_BYTES). */
  #ahead = new Map<number, Buffer>();
  /** Piece-sized buffers for #take/#give, and the backing stores that came from there. */
  #pool: Buffer[] = [];
  #mine = new WeakSet<ArrayBufferLike>();
  /** Callers' buffers lent through acceptPiece, and how each goes back. */
  #lent = new Map<Uint8Array, (bytes: Uint8Array) => void>();
  #poolSize: number;
  #aheadBytes = 0;
  /** Pieces writePiece is writing now, until recorded (PieceWriters of these drop their bytes). */
  #claimed = new Map<number, Promise<void>>();
  /** The background read-back that advances #hashed over pieces not in memory, when running. */
  #catchingUp: Promise<void> | null = null;
  /** The O_DIRECT handle, opened at the first write it can take (null inside: refused or given up). */
  #direct: Promise<FileHandle | null> | null = null;
  #directBytes = 0;

  constructor(
    readonly manifest: Manifest,
    readonly baseName: string,
    private readonly destDir: string,
    readonly tempPath: string,
    private readonly bitsPath: string,
    private readonly fh: FileHandle,
    bits: Bitfield,
    private readonly durable: boolean,
    private readonly directIo: boolean,
    private readonly log: Logger,
  ) {
    this.pieceCount = manifest.pieces.length;
    this.#poolSize = Math.max(1, Math.min(manifest.pieceSize, manifest.size));
    this.#bits = bits;
    this.resumedCount = bits.count;
    for (const i of bits.indexes()) this.#bytesVerified += pieceRange(manifest, i).length;
  }

  get path(): string {
    return this.#finalPath ?? this.tempPath;
  }
  get verifiedCount(): number {
    return this.#bits.count;
  }
  get bytesVerified(): number {
    return this.#bytesVerified;
  }
  get bytesWrittenDirect(): number {
    return this.#directBytes;
  }
  get complete(): boolean {
    return this.#bits.complete;
  }
  has(i: number): boolean {
    return this.#bits.has(i);
  }
  missing(): number[] {
    return this.#bits.missing();
  }
  bitfield(): Bitfield {
    return this.#bits.clone();
  }

  async writeAt(offset: number, bytes: Uint8Array): Promise<void> {
    this.#open();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + bytes.length > this.manifest.size) {
      throw new ShoalError(ErrorCode.BAD_REQUEST, `write of ${bytes.length} bytes at ${offset} is outside the file (${this.manifest.size} bytes)`);
    }
    const ps = this.manifest.pieceSize;
    let pos = 0;
    while (pos < bytes.length) {
      const at = offset + pos;
      const piece = Math.floor(at / ps);
      const take = Math.min(bytes.length - pos, (piece + 1) * ps - at);
      if (!this.#bits.has(piece)) await this.#write(bytes.subarray(pos, pos + take), at);
      pos += take;
    }
  }

  async verifyPiece(i: number, bytes?: Uint8Array): Promise<boolean> {
    this.#open();
    this.#index(i);
    if (this.#bits.has(i)) return true;
    if (bytes) {
      if (bytes.length !== pieceRange(this.manifest, i).length || sha256(bytes) !== this.manifest.pieces[i]) return false;
    } else {
      // The bytes read back also feed the running hash, so they are not read a second time for it.
      const read = await this.#readPiece(i);
      if (!read) return false;
      if (sha256(read) !== this.manifest.pieces[i]) {
        this.#give(read);
        return false;
      }
      const marked = this.#mark(i);
      this.#feed(i, read, true);
      await marked;
      return true;
    }
    const marked = this.#mark(i); // sets the bit synchronously, which the running hash's catch-up looks at
    this.#feed(i, bytes);
    await marked;
    return true;
  }

  async acceptPiece(i: number, bytes?: Uint8Array, release?: (bytes: Uint8Array) => void): Promise<void> {
    const lent = bytes !== undefined && release !== undefined;
    try {
      this.#open();
      this.#index(i);
      if (bytes && bytes.length !== pieceRange(this.manifest, i).length) throw new ShoalError(ErrorCode.BAD_REQUEST, `piece ${i} has ${pieceRange(this.manifest, i).length} bytes, not ${bytes.length}`);
    } catch (err) {
      if (lent) release(bytes);
      throw err;
    }
    if (this.#bits.has(i)) {
      if (lent) release(bytes);
      return;
    }
    if (lent) this.#lent.set(bytes, release);
    const marked = this.#mark(i);
    this.#feed(i, bytes, lent); // without bytes the running hash reads the piece back when its turn comes
    await marked;
  }

  /** Writes `bytes` at `position`: the whole pages of a page-aligned write past the page cache when direct
   * writes are on, the rest through the ordinary handle. */
  async #write(bytes: Uint8Array, position: number): Promise<void> {
    const head = this.directIo ? directPrefix(bytes, position) : 0;
    const direct = head > 0 ? await (this.#direct ??= openDirect(this.tempPath, this.fh)) : null;
    if (!direct) {
      await writeFully(this.fh, bytes, position);
      return;
    }
    try {
      await writeFully(direct, bytes.subarray(0, head), position, directSliceBytes);
      this.#directBytes += head;
    } catch (err) {
      // Refused after all (a block size larger than a page, a file system that checks only at write time):
      // buffered from now on. Any other error is the disk's, and is the caller's to see.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      const current = this.#direct;
      this.#direct = Promise.resolve(null);
      if ((await current) === direct) {
        this.log.info('direct writes refused here; writing through the page cache', { path: this.tempPath });
        direct.close().catch(() => undefined); // after the writes still in flight on it
      }
      await writeFully(this.fh, bytes.subarray(0, head), position);
    }
    if (head < bytes.length) await writeFully(this.fh, bytes.subarray(head), position + head);
  }

  /** Closes the O_DIRECT handle, if one was opened (its writes have settled: every write is awaited by now). */
  async #closeDirect(): Promise<void> {
    const direct = this.#direct;
    this.#direct = Promise.resolve(null);
    await (await direct?.catch(() => null))?.close().catch(() => undefined);
  }

  /** Advances the running whole-file hash with verified piece `i` (its bytes when the caller has them;
   * `owned`: they are ours to keep, no copy needed, and go back through #give). */
  #feed(i: number, bytes: Uint8Array | undefined, owned = false): void {
    if (i < this.#hashed) {
      if (bytes && owned) this.#give(bytes);
      return;
    }
    if (i === this.#hashed && bytes && !this.#catchingUp) {
      // In order: hash the caller's bytes now, no copy, then whatever waited in memory behind them.
      this.#whole.update(bytes);
      this.#hashed++;
      if (owned) this.#give(bytes);
      this.#drainAhead();
    } else if (bytes && !this.#ahead.has(i) && this.#aheadBytes + bytes.length <= AHEAD_BUDGET_BYTES) {
      let copy: Buffer;
      if (owned) copy = bytes as Buffer;
      else {
        copy = this.#take(bytes.length);
        copy.set(bytes);
      }
      this.#ahead.set(i, copy);
      this.#aheadBytes += bytes.length;
    } else if (bytes && owned) {
      this.#give(bytes);
    }
    this.#startCatchUp();
  }

  #drainAhead(): void {
    for (let b = this.#ahead.get(this.#hashed); b; b = this.#ahead.get(this.#hashed)) {
      this.#whole.update(b);
      this.#ahead.delete(this.#hashed);
      this.#aheadBytes -= b.length;
      this.#hashed++;
      this.#give(b);
    }
  }

  /** A buffer of `length` bytes (at most a piece) from the pool of piece-sized buffers: pieces copied ahead of
   * the running hash and read back for it came and went as 4 MiB allocations, a steady load on the garbage
   * collector of a receiving agent. */
  #take(length: number): Buffer {
    const full = this.#pool.pop() ?? Buffer.allocUnsafeSlow(this.#poolSize);
    this.#mine.add(full.buffer);
    return full.subarray(0, length);
  }

  /** Returns a buffer from #take to the pool, or a lent one to its owner (anything else is left alone). */
  #give(b: Uint8Array): void {
    const release = this.#lent.get(b);
    if (release) {
      this.#lent.delete(b);
      release(b);
      return;
    }
    if (!this.#mine.has(b.buffer) || this.#pool.length >= POOL_BUFFERS) return;
    this.#pool.push(Buffer.from(b.buffer, 0, this.#poolSize));
  }

  /** Reads back verified pieces at the head of the prefix that are not in memory (one piece at a time). */
  #startCatchUp(): void {
    if (this.#catchingUp || this.#closed || this.#hashed >= this.pieceCount || !this.#bits.has(this.#hashed)) return;
    this.#catchingUp = (async () => {
      try {
        while (!this.#closed && this.#hashed < this.pieceCount && this.#bits.has(this.#hashed)) {
          this.#drainAhead();
          if (this.#hashed >= this.pieceCount || !this.#bits.has(this.#hashed)) break;
          const i = this.#hashed;
          const buf = await this.#readPiece(i);
          if (this.#closed || this.#hashed !== i) break;
          if (!buf) break; // short read: finalize() reads (and checks) the rest itself
          this.#whole.update(buf);
          this.#hashed++;
          this.#give(buf);
        }
      } catch (err) {
        this.log.debug('running hash read-back stopped', { err });
      } finally {
        this.#catchingUp = null;
      }
    })();
  }

  async #readPiece(i: number): Promise<Buffer | null> {
    const { offset, length } = pieceRange(this.manifest, i);
    const buf = this.#take(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got === length) return buf;
    this.#give(buf);
    return null;
  }

  #resetRunningHash(): void {
    this.#whole = createHash('sha256');
    this.#hashed = 0;
    for (const b of this.#ahead.values()) this.#give(b);
    this.#ahead.clear();
    this.#aheadBytes = 0;
  }

  /** Whole-file SHA-256 (hex): the running hash, completed by reading what it has not covered. */
  async #wholeHash(): Promise<string> {
    for (let tries = 0; this.#catchingUp && tries < 1000; tries++) await this.#catchingUp;
    this.#drainAhead();
    const h = this.#whole;
    const from = this.#hashed < this.pieceCount ? pieceRange(this.manifest, this.#hashed).offset : this.manifest.size;
    this.#resetRunningHash(); // a digest can be taken once; a failed check starts over anyway
    if (from < this.manifest.size) {
      const stream = createReadStream(this.tempPath, { start: from, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>;
      for await (const chunk of stream) h.update(chunk);
    }
    return h.digest('hex');
  }

  async #checkOnDisk(i: number): Promise<boolean> {
    const buf = await this.#readPiece(i);
    if (!buf) return false;
    const ok = sha256(buf) === this.manifest.pieces[i];
    this.#give(buf);
    return ok;
  }

  async writePiece(i: number, bytes: Uint8Array): Promise<boolean> {
    this.#open();
    this.#index(i);
    if (this.#bits.has(i)) return true;
    const { offset, length } = pieceRange(this.manifest, i);
    if (bytes.length !== length || sha256(bytes) !== this.manifest.pieces[i]) return false;
    const other = this.#claimed.get(i);
    if (other) {
      // Another good copy of the same bytes is being written: done when it is.
      await other;
      return this.#bits.has(i);
    }
    const write = (async () => {
      await this.#write(bytes, offset);
      const marked = this.#mark(i);
      this.#feed(i, bytes);
      await marked;
    })();
    this.#claimed.set(i, write.then(() => undefined, () => undefined));
    try {
      await write;
    } finally {
      this.#claimed.delete(i);
    }
    return true;
  }

  pieceWriter(i: number): PieceWriter {
    this.#open();
    this.#index(i);
    const { offset, length } = pieceRange(this.manifest, i);
    const hash = createHash('sha256');
    let next = 0;
    let skipped = false;
    return {
      write: (bytes, at) => {
        this.#open();
        if (at !== next || at + bytes.length > length) {
          throw new ShoalError(ErrorCode.BAD_REQUEST, `write of ${bytes.length} bytes at ${at} of piece ${i} (${length} bytes, ${next} written)`);
        }
        next += bytes.length;
        if (skipped || this.#bits.has(i) || this.#claimed.has(i)) {
          skipped = true;
          return;
        }
        hash.update(bytes);
        for (let done = 0; done < bytes.length; ) done += writeSync(this.fh.fd, bytes, done, bytes.length - done, offset + at + done);
      },
      finish: async () => {
        this.#open();
        const other = this.#claimed.get(i);
        if (other) await other;
        if (this.#bits.has(i)) return true;
        if (skipped || other) return null;
        if (next !== length) throw new ShoalError(ErrorCode.BAD_REQUEST, `piece ${i} finished after ${next} of ${length} bytes`);
        if (hash.digest('hex') !== this.manifest.pieces[i]) return false;
        const marked = this.#mark(i);
        this.#feed(i, undefined); // the running hash reads the piece back from the page cache when its turn comes
        await marked;
        return true;
      },
    };
  }

  async finalize(): Promise<string> {
    this.#open();
    if (!this.#bits.complete) {
      throw new ShoalError(ErrorCode.CONFLICT, `${this.pieceCount - this.#bits.count} of ${this.pieceCount} pieces are still missing`);
    }
    await this.#persist();
    // The final file must survive a power loss once it carries its final name.
    await this.fh.datasync();
    const whole = await this.#wholeHash();
    if (whole !== this.manifest.sha256) {
      // Bits that outlived their bytes (power loss without `durable`), or a manifest whose pieces do not
      // make its whole: re-check every piece from disk and forget the bad ones, so a new download fetches
      // only those (all of them when the manifest itself is wrong).
      const bad: number[] = [];
      for (let i = 0; i < this.pieceCount; i++) {
        this.#bits.clear(i);
        if (!(await this.#checkOnDisk(i))) bad.push(i);
        else this.#bits.set(i);
      }
      if (bad.length === 0) this.#bits = new Bitfield(this.pieceCount);
      this.#bytesVerified = 0;
      for (const i of this.#bits.indexes()) this.#bytesVerified += pieceRange(this.manifest, i).length;
      await this.#persist();
      throw new ShoalError(ErrorCode.HASH_MISMATCH, 'whole-file SHA-256 does not match the manifest', {
        expected: this.manifest.sha256, actual: whole, badPieces: bad.length,
      });
    }
    await this.#closeDirect();
    await this.fh.close();
    this.#closed = true;
    const path = await this.#place();
    this.#finalPath = path;
    await rm(this.bitsPath, { force: true });
    this.log.info('file complete', { path, size: this.manifest.size });
    return path;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#persist();
    } finally {
      this.#closed = true;
      await this.#catchingUp?.catch(() => undefined);
      this.#resetRunningHash(); // hands back lent buffers
      await this.#closeDirect();
      await this.fh.close();
    }
  }

  async abort(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      await this.#flushing?.catch(() => undefined);
      await this.#catchingUp?.catch(() => undefined);
      this.#resetRunningHash();
      await this.#closeDirect();
      await this.fh.close().catch(() => undefined);
    }
    await rm(this.tempPath, { force: true });
    await rm(this.bitsPath, { force: true });
  }

  /** Moves the temp file to the first free `name`, `name (2)`, … or reuses an identical existing file. */
  async #place(): Promise<string> {
    for (let n = 1; n <= 1000; n++) {
      const candidate = join(this.destDir, n === 1 ? this.baseName : numberedName(this.baseName, n));
      try {
        // link() fails with EEXIST instead of replacing: no window where another file could be overwritten.
        await link(this.tempPath, candidate);
        await unlink(this.tempPath);
        return candidate;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          if (await this.#sameContent(candidate)) {
            await unlink(this.tempPath);
            this.log.info('identical file already present', { path: candidate });
            return candidate;
          }
          continue;
        }
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
          // File systems without hard links: check then rename (a narrow race, the best they allow).
          const exists = await lstat(candidate).then(() => true, () => false);
          if (exists) {
            if (await this.#sameContent(candidate)) {
              await unlink(this.tempPath);
              return candidate;
            }
            continue;
          }
          await rename(this.tempPath, candidate);
          return candidate;
        }
        throw err;
      }
    }
    throw new ShoalError(ErrorCode.CONFLICT, `too many files named like ${this.baseName}`);
  }

  async #sameContent(path: string): Promise<boolean> {
    const st = await lstat(path).catch(() => null);
    if (!st || !st.isFile() || st.size !== this.manifest.size) return false;
    return (await hashPath(path).catch(() => '')) === this.manifest.sha256;
  }

  async #mark(i: number): Promise<void> {
    if (!this.#bits.has(i)) {
      this.#bits.set(i);
      this.#bytesVerified += pieceRange(this.manifest, i).length;
    }
    await this.#persist();
  }

  /** Resolves once the sidecar on disk holds at least the current in-memory bits. Concurrent callers share
   * flushes, so many pieces finishing together cost one fdatasync and one rename. */
  async #persist(): Promise<void> {
    const mine = ++this.#gen;
    for (let tries = 0; this.#flushedGen < mine; tries++) {
      if (tries > 1000) throw new ShoalError(ErrorCode.INTERNAL, 'resume state flush did not settle');
      if (!this.#flushing) this.#flushing = this.#flushOnce().finally(() => (this.#flushing = null));
      await this.#flushing;
    }
  }

  async #flushOnce(): Promise<void> {
    const gen = this.#gen;
    const snapshot = encodeSidecar(this.manifest, this.#bits);
    if (this.durable) await this.fh.datasync();
    const tmp = `${this.bitsPath.slice(0, -'.shoal-bits'.length)}.shoal-tmp`;
    await writeFile(tmp, snapshot);
    await rename(tmp, this.bitsPath);
    this.#flushedGen = gen;
  }

  #open(): void {
    if (this.#closed) throw new ShoalError(ErrorCode.ABORTED, 'partial file is closed');
  }

  #index(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.pieceCount) throw new ShoalError(ErrorCode.BAD_REQUEST, `piece index ${i} out of range`);
  }
}

function encodeSidecar(m: Manifest, bits: Bitfield): Buffer {
  const out = Buffer.alloc(HEADER + bits.bytes.length);
  MAGIC.copy(out, 0);
  Buffer.from(m.sha256, 'hex').copy(out, 8);
  out.writeBigUInt64BE(BigInt(m.size), 40);
  out.writeUInt32BE(m.pieceSize, 48);
  out.writeUInt32BE(bits.length, 52);
  Buffer.from(bits.bytes).copy(out, HEADER);
  return out;
}

async function readSidecar(path: string, m: Manifest, count: number): Promise<Bitfield | null> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (buf.length !== HEADER + Math.ceil(count / 8) || !buf.subarray(0, 8).equals(MAGIC)) return null;
  const same =
    buf.subarray(8, 40).toString('hex') === m.sha256 &&
    buf.readBigUInt64BE(40) === BigInt(m.size) &&
    buf.readUInt32BE(48) === m.pieceSize &&
    buf.readUInt32BE(52) === count;
  return same ? new Bitfield(count, buf.subarray(HEADER)) : null;
}

/** Most bytes one write asks for. The page cache sizes the folios a write allocates by the write's length,
 * and on the bed host (a VM that hands free memory back to its host) large new folios are slow to fill. On
 * kernel 6.18 there, 256 MiB into a new file in 4 writes of 1 MiB at a time took 0.51–0.54 s of kernel time,
 * and 0.10–0.11 s in 512 KiB or 256 KiB ones (0.13–0.14 s in 128 KiB ones); an earlier kernel there had its
 * threshold at 2 MiB. Elsewhere the difference is a few syscalls per piece. */
const writeSliceBytes = 256 * 1024;
/** Most bytes one direct write asks for (no page cache to size; a multiple of the direct alignment). */
const directSliceBytes = 4 * 1024 * 1024;

async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number, slice = writeSliceBytes): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(slice, bytes.length - done), position + done);
    done += bytesWritten;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function hashPath(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex');
}

function truncateUtf8(s: string, maxBytes: number): string {
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch, 'utf8') > maxBytes) break;
    out += ch;
  }
  return out;
}
