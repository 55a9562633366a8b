/**
 * Content-addressed file bytes of the coordinator: `<dataDir>/blobs/<sha256>`. Uploads stream into
 * `<dataDir>/tmp` while the whole file and each piece are hashed, are fsynced, then renamed into place
 * (a second copy of the same bytes is dropped). A killed upload leaves only a temp file, removed by
 * cleanTmp() at the next start. Never holds a whole file in memory.
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import { Limits } from '../protocol/limits.ts';
import type { Logger } from '../logger.ts';

/** What an upload produced: hashes (lower-case hex), size in bytes, piece size in bytes. */
export interface IngestedBlob {
  sha256: string;
  size: number;
  pieceSize: number;
  pieces: string[];
  /** Lets the garbage collector touch this blob again; call once the catalogue row is written (or not). */
  release(): void;
}

export interface IngestOptions {
  /** Piece size, bytes. */
  pieceSize: number;
  /** Largest accepted size, bytes; more → PAYLOAD_TOO_LARGE. */
  maxBytes: number;
  signal?: AbortSignal;
}

export interface BlobStore {
  /** Directory of finished blobs. */
  readonly dir: string;
  /** Directory of uploads in progress. */
  readonly tmpDir: string;
  /** Creates the directories. */
  init(): Promise<void>;
  /** Absolute path of a blob; throws BAD_REQUEST for anything that is not a hex SHA-256. */
  pathOf(sha256: string): string;
  /** True when the blob's bytes are on disk. */
  has(sha256: string): Promise<boolean>;
  /** Streams `source` into a new blob; see IngestedBlob. Throws PAYLOAD_TOO_LARGE, ABORTED, or the stream's error. */
  ingest(source: Readable, options: IngestOptions): Promise<IngestedBlob>;
  /** True while an upload of these bytes is between rename and catalogue commit. */
  isPinned(sha256: string): boolean;
  /** Deletes a blob's bytes (missing is fine). */
  remove(sha256: string): Promise<void>;
  /**
   * Garbage-collects one blob: unless an upload of the same bytes is in progress, runs `deleteRow` (which
   * answers whether the catalogue row went away) and then deletes the bytes. Serialised per blob with the
   * final step of ingest(), so a share racing the collector never ends up with a row and no bytes.
   */
  collect(sha256: string, deleteRow: () => Promise<boolean>): Promise<boolean>;
  /** Deletes every leftover temp file; returns how many. */
  cleanTmp(): Promise<number>;
}

const shaRe = /^[0-9a-f]{64}$/;

/**
 * A Transform that gathers the stream into whole pieces, hashes the whole stream on this thread and each
 * piece off it (WebCrypto digests run on libuv's thread pool), and passes pieces on as single large
 * writes. Hashing every byte twice on one thread capped uploads near 80 MB/s; this way the piece
 * hashes overlap with TLS and the whole-file hash. At most `maxDigests` piece digests are in flight.
 */
class PieceHasher extends Transform {
  readonly whole = createHash('sha256');
  size = 0;
  private readonly digests: Array<Promise<string>> = [];
  private readonly done: string[] = [];
  private piece: Buffer;
  private inPiece = 0;
  private static readonly maxDigests = 4;

  constructor(
    private readonly pieceSize: number,
    private readonly maxBytes: number,
  ) {
    super({ readableHighWaterMark: pieceSize });
    this.piece = Buffer.allocUnsafe(pieceSize);
  }

  /** Piece hashes in order (lower-case hex); valid after the stream finished. */
  async pieces(): Promise<string[]> {
    this.done.push(...(await Promise.all(this.digests.splice(0))));
    return this.done;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      callback(new ShoalError(ErrorCode.PAYLOAD_TOO_LARGE, `upload larger than ${this.maxBytes} bytes`));
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(chunk.length - off, this.pieceSize - this.inPiece);
      chunk.copy(this.piece, this.inPiece, off, off + take);
      this.inPiece += take;
      off += take;
      if (this.inPiece === this.pieceSize) this.closePiece();
    }
    if (this.done.length + this.digests.length > Limits.maxPieces) {
      callback(
        new ShoalError(ErrorCode.PAYLOAD_TOO_LARGE, `upload has more than ${Limits.maxPieces} pieces`),
      );
      return;
    }
    if (this.digests.length < PieceHasher.maxDigests) {
      callback();
      return;
    }
    // Back-pressure: wait for the oldest digests so memory stays bounded.
    const waiting = this.digests.splice(0, this.digests.length - PieceHasher.maxDigests + 1);
    Promise.all(waiting).then(
      (hex) => {
        this.done.push(...hex);
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override _flush(callback: TransformCallback): void {
    if (this.inPiece > 0) this.closePiece();
    callback();
  }

  private closePiece(): void {
    const piece = this.inPiece === this.pieceSize ? this.piece : this.piece.subarray(0, this.inPiece);
    this.whole.update(piece);
    this.digests.push(webcrypto.subtle.digest('SHA-256', piece).then((d) => Buffer.from(d).toString('hex')));
    this.push(piece);
    this.piece = Buffer.allocUnsafe(this.pieceSize);
    this.inPiece = 0;
  }
}

/** Creates the blob store under `options.dataDir`. */
export function createBlobStore(deps: { logger: Logger }, options: { dataDir: string }): BlobStore {
  const dir = join(options.dataDir, 'blobs');
  const tmpDir = join(options.dataDir, 'tmp');
  const pinned = new Map<string, number>();
  const locks = new Map<string, Promise<unknown>>();
  /** Runs `fn` after every earlier locked step for the same blob. */
  const withLock = <T>(sha256: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(sha256) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    locks.set(sha256, settled);
    void settled.then(() => {
      if (locks.get(sha256) === settled) locks.delete(sha256);
    });
    return next;
  };
  const log = deps.logger;

  const pathOf = (sha256: string): string => {
    if (!shaRe.test(sha256)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'not a SHA-256');
    return join(dir, sha256);
  };
  const exists = async (p: string): Promise<boolean> => {
    try {
      await stat(p);
      return true;
    } catch {
      return false;
    }
  };

  return {
    dir,
    tmpDir,
    async init() {
      await mkdir(dir, { recursive: true });
      await mkdir(tmpDir, { recursive: true });
    },
    pathOf,
    has: (sha256) => exists(pathOf(sha256)),
    isPinned: (sha256) => (pinned.get(sha256) ?? 0) > 0,
    async ingest(source, opts) {
      const tmp = join(tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
      const hasher = new PieceHasher(opts.pieceSize, opts.maxBytes);
      let pieces: string[];
      try {
        await pipeline(source, hasher, createWriteStream(tmp, { flags: 'wx' }), { signal: opts.signal });
        if (source.readableAborted || (source as { aborted?: boolean }).aborted) {
          throw new ShoalError(ErrorCode.ABORTED, 'upload aborted by the client');
        }
        // The rename must not reach the disk before the bytes do, or a crash could leave a short blob.
        const fh = await open(tmp, 'r+');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        pieces = await hasher.pieces();
      } catch (err) {
        await rm(tmp, { force: true });
        if (err instanceof ShoalError) throw err;
        if (
          (err as { name?: string }).name === 'AbortError' ||
          (err as { code?: string }).code === 'ECONNRESET' ||
          (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE'
        ) {
          throw new ShoalError(ErrorCode.ABORTED, 'upload aborted', undefined, { cause: err });
        }
        throw err;
      }
      const sha256 = hasher.whole.digest('hex');
      await withLock(sha256, async () => {
        pinned.set(sha256, (pinned.get(sha256) ?? 0) + 1);
        try {
          const target = pathOf(sha256);
          if (await exists(target)) await unlink(tmp);
          else await rename(tmp, target);
        } catch (err) {
          pinned.set(sha256, (pinned.get(sha256) ?? 1) - 1);
          await rm(tmp, { force: true });
          throw err;
        }
      });
      let released = false;
      log.debug('blob stored', { sha256, size: hasher.size });
      return {
        sha256,
        size: hasher.size,
        pieceSize: opts.pieceSize,
        pieces,
        release() {
          if (released) return;
          released = true;
          const n = (pinned.get(sha256) ?? 1) - 1;
          if (n <= 0) pinned.delete(sha256);
          else pinned.set(sha256, n);
        },
      };
    },
    async remove(sha256) {
      await rm(pathOf(sha256), { force: true });
    },
    collect(sha256, deleteRow) {
      return withLock(sha256, async () => {
        if ((pinned.get(sha256) ?? 0) > 0) return false;
        if (!(await deleteRow())) return false;
        await rm(pathOf(sha256), { force: true });
        return true;
      });
    },
    async cleanTmp() {
      let names: string[];
      try {
        names = await readdir(tmpDir);
      } catch {
        return 0;
      }
      for (const name of names) await rm(join(tmpDir, name), { force: true, recursive: true });
      if (names.length > 0) log.info('removed unfinished uploads', { count: names.length });
      return names.length;
    },
  };
}
