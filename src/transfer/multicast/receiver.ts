/**
 * Multicast receiver: joins the group, reassembles each sealed chunk from its fragments, opens it
 * (AES-256-GCM), writes the plaintext into a PartialFile and verifies every piece whose chunks are all in.
 * Malformed, foreign and forged input is counted by reason and dropped; nothing thrown escapes the socket
 * handler. Memory stays bounded whatever the file size: at most `reassemblyBytes` of incomplete chunks are
 * held in memory; older incomplete chunks are "spilled": their ciphertext goes to the chunk's place in the
 * partial file (GCM is a stream mode, ciphertext byte i belongs to plaintext byte i), only the fragment map
 * and the 16-byte tag stay in memory, and the chunk is read back and opened once its last fragment arrives.
 * A restarted receiver resumes from the PartialFile's verified pieces and reports only what it lacks.
 * The plaintext of the few most recent pieces is also kept in memory (`pieceBufferBytes`), so a piece that
 * completes there is verified from those bytes instead of being read back from disk.
 */
import dgram from 'node:dgram';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../../logger.ts';
import type { Manifest } from '../../protocol/api.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import { datagramFields, fragmentSpan, readDatagramAt, type DatagramFields } from '../../protocol/datagram.ts';
import { DatagramKind, TRANSFER_ID_BYTES } from '../../protocol/datagram-types.ts';
import { createChunkSealer, SEAL_TAG_BYTES, wireTransferId } from '../../crypto/chunk-seal.ts';
import type { PartialFile } from '../pieces/partial-file.ts';
import type { ChunkRange, ReceiverStatus } from './receiver-status.ts';
import { loadBatchUdp } from './batch-udp.ts';
import { maxParity, recoverFragments } from './erasure.ts';
import { createSlabPool } from './huge-buffer.ts';

/** The PartialFile methods the receiver calls. */
export type MulticastPartial = Pick<PartialFile, 'manifest' | 'tempPath' | 'complete' | 'has' | 'writeAt' | 'verifyPiece' | 'acceptPiece'>;

export interface MulticastReceiverDeps {
  logger: Logger;
  partial: MulticastPartial;
}

export interface MulticastReceiverOptions {
  /** Group address (IPv4 multicast). */
  address: string;
  /** Group UDP port. */
  port: number;
  /** Local interface address to join on (e.g. 10.77.0.11, 127.0.0.1); the kernel picks when omitted. */
  interface?: string;
  /** 32-byte AES-256-GCM key of the transfer. */
  key: Uint8Array;
  /** Transfer id (the string the coordinator hands out) or its 8-byte wire form. */
  transferId: string | Uint8Array;
  manifest: Manifest;
  /** Plaintext bytes per chunk; must divide the piece size when the file has several pieces. */
  chunkSize: number;
  /** Name reported in status(). */
  receiverId?: string;
  /** SO_RCVBUF to ask for, bytes (default 16 MiB: a third of a second at 400 Mbit/s, for a receiver that shares
   * its cores and loses them for a moment; the kernel may grant less, which is logged). */
  recvBufferBytes?: number;
  /** Memory for incomplete chunks, bytes (default 32 MiB: about a second of chunks waiting for a repair); older incomplete chunks spill to disk. */
  reassemblyBytes?: number;
  /** Memory for plaintext copies of pieces being received, bytes (default 32 MiB, at least one piece when
   * not 0); a piece completed there is verified without reading it back. 0 turns it off. */
  pieceBufferBytes?: number;
  /**
   * Most fragment indexes listed per status (default 40,000, about 300 KB of JSON, well inside a WebSocket
   * message); chunks past the budget, and chunks missing more than half their fragments, are reported whole.
   */
  maxPartialFragments?: number;
  /** Most missing ranges per status (default 60,000); past it the last range is widened (held chunks sent
   * again are only duplicates). */
  maxRanges?: number;
  /** Hash every piece against the manifest as it completes (default false: chunks are authenticated by
   * AES-GCM, and the whole-file SHA-256 checked when the file is finalized covers every byte once). */
  checkPieces?: boolean;
  /** Socket I/O: 'batch' (recvmmsg through build/shoal_udp.node), 'dgram' (node:dgram) or 'auto' (default:
   * batch where it is built). */
  io?: 'auto' | 'batch' | 'dgram';
  /**
   * TEST KNOB ONLY: drop this fraction (0..1) of arriving datagrams before looking at them, to exercise
   * repair on loopback where the kernel loses nothing. Never set it in production (the namespace bed gives
   * real loss).
   */
  simulateLossRate?: number;
}

/** Why datagrams were dropped. */
export interface RejectCounts {
  /** Not a datagram of ours: bad header, lengths, fields, chunk index or fragment geometry. */
  malformed: number;
  /** Well-formed but for another transfer. */
  wrongTransfer: number;
  /** Chunks that failed authentication (forged or corrupted fragments); counted per chunk. */
  auth: number;
  /** Dropped because the disk fell behind or too many chunks were incomplete at once. */
  overload: number;
}

export interface MulticastReceiverStats {
  /** Datagrams that reached the handler (incl. rejected and duplicates). */
  datagrams: number;
  /** Bytes that reached the handler. */
  bytes: number;
  /** Fragments of chunks already held or already received. */
  duplicates: number;
  rejected: RejectCounts;
  /** Chunks authenticated and written. */
  chunks: number;
  /** Pieces verified by this receiver (not counting resumed ones). */
  pieces: number;
  /** Pieces whose hash did not match after all their chunks were written (refetched). */
  pieceFailures: number;
  /** Chunks whose ciphertext went to disk before they were complete. */
  spilled: number;
  /** Data fragments restored from parity fragments instead of being received. */
  restored: number;
  /** Dropped by the simulateLossRate test knob. */
  simulatedDrops: number;
  /** SO_RCVBUF granted by the kernel, bytes (Linux reports twice the usable size). */
  recvBufferBytes: number;
  /** Whether the socket takes datagrams coalesced by receive offload (UDP_GRO; batched I/O only). */
  receiveOffload: boolean;
  /** Datagrams that arrived coalesced behind another by receive offload (a live count). */
  coalescedDatagrams: number;
  /** Most bytes waiting for disk work at once (at MAX_IO_QUEUED_BYTES, new chunks are dropped). */
  peakDiskQueueBytes: number;
  /** When the first datagram of this transfer arrived (ms since epoch), null until then: a receiver that
   * hears nothing seconds after the sender started is not reached by multicast and should use the swarm. */
  firstDataAt: number | null;
}

export interface MulticastReceiver {
  start(): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** What this receiver lacks; only missing chunks (and missing fragments of partly held ones) are listed. */
  status(): ReceiverStatus;
  readonly stats: MulticastReceiverStats;
  /**
   * Resolves true once the sender's end of pass `pass` (or a later one) was seen, false when the marker did
   * not come within `timeoutMs`. Call it before status() on a status request: datagrams of the pass may
   * still be arriving until the marker.
   */
  waitPassEnd(pass: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Resolves when every piece of the file is verified (rejects with ABORTED on signal or stop). */
  whenComplete(signal?: AbortSignal): Promise<void>;
}

const MISSING = 0;
const COMPLETING = 1;
const DONE = 2;
/** Bytes of disk work allowed to queue before new datagrams are dropped (and repaired in a later pass). */
const MAX_IO_QUEUED_BYTES = 64 * 1024 * 1024;
/** Datagrams a reported loss rate covers at least (the sender's batches can be a handful of repairs). */
const LOSS_WINDOW = 1000;
/** Spilled chunks read back and opened at once. */
const MAX_READ_BACKS = 16;
/** Most spilled chunks remembered; beyond that a chunk's fragments are dropped and it is asked for whole. */
const MAX_SPILLED = 262_144;
/** Late fragments of one spilled chunk kept in memory, bytes; more go to disk. */
const MAX_LATE_PER_CHUNK = 16 * 1024;
/** Late fragments of all spilled chunks kept in memory, bytes. */
const MAX_LATE_TOTAL = 16 * 1024 * 1024;

interface Entry {
  epoch: number;
  count: number;
  got: Uint8Array;
  gotCount: number;
  /** Whole sealed chunk while in memory (a view of a pooled buffer); null once spilled. */
  buf: Buffer | null;
  /** The pooled buffer behind `buf`. */
  backing: Buffer | null;
  /** Tag bytes once spilled (the ciphertext is on disk). */
  tag: Buffer | null;
  /** Ciphertext fragments that arrived after the spill, kept in memory (offset, bytes) rather than written:
   * the read-back that opens the chunk lays them over what it read. */
  late: Array<[number, Buffer]> | null;
  lateBytes: number;
  /** Parity fragments held (erasure.ts): with them, `count - parity.length` data fragments complete the chunk. */
  parity: Array<{ index: number; bytes: Buffer }> | null;
}

/** Creates a receiver; call start() to join the group. */
export function createMulticastReceiver(deps: MulticastReceiverDeps, options: MulticastReceiverOptions): MulticastReceiver {
  const log = deps.logger.child('multicast:receiver');
  const { partial } = deps;
  const m = options.manifest;
  const chunkSize = options.chunkSize;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 16 * 1024 * 1024) throw new ShoalError(ErrorCode.BAD_REQUEST, 'chunk size out of range');
  if (m.pieces.length > 1 && m.pieceSize % chunkSize !== 0) throw new ShoalError(ErrorCode.BAD_REQUEST, 'chunk size must divide the piece size');
  const tid = typeof options.transferId === 'string' ? wireTransferId(options.transferId) : options.transferId;
  const sealer = createChunkSealer(options.key, tid);
  const receiverId = options.receiverId ?? 'receiver';
  const chunkCount = Math.ceil(m.size / chunkSize);
  const chunksPerPiece = m.pieces.length > 1 ? m.pieceSize / chunkSize : Math.max(1, chunkCount);
  const maxMem = Math.max(1, Math.floor((options.reassemblyBytes ?? 32 * 1024 * 1024) / (chunkSize + SEAL_TAG_BYTES)));
  const maxPartialFragments = options.maxPartialFragments ?? 40_000;
  const maxRanges = options.maxRanges ?? 60_000;
  const dropRate = options.simulateLossRate ?? 0;
  const pieceBufferBytes = options.pieceBufferBytes ?? 32 * 1024 * 1024;
  const maxPieceBuffers = pieceBufferBytes <= 0 ? 0 : Math.max(1, Math.floor(pieceBufferBytes / Math.max(1, m.pieceSize)));

  // Reassembly buffers are reused: a fresh 64 KiB buffer per chunk kept the garbage collector busy at
  // 30,000 datagrams/s. They and the piece buffers below are cut from slabs on huge pages (huge-buffer.ts): at
  // 2 % loss a receiver has 15-20 MiB of chunks and 12-15 pieces in hand at once, and first writes into fresh
  // 4 KiB pages cost it about 20,000 page faults per transfer on the bed.
  const chunkSlab = createSlabPool(chunkSize + SEAL_TAG_BYTES, Math.min(chunkCount, maxMem + 4));
  const pool: Buffer[] = [];
  const takeBuffer = (): Buffer => chunkSlab.take() ?? pool.pop() ?? Buffer.allocUnsafe(chunkSize + SEAL_TAG_BYTES);
  const releaseBuffer = (e: Entry) => {
    if (e.backing && !chunkSlab.give(e.backing) && pool.length < maxMem + 4) pool.push(e.backing);
    e.backing = null;
    e.buf = null;
  };
  const state = new Uint8Array(chunkCount);
  const pieceLeft = new Int32Array(m.pieces.length);
  const mem = new Map<number, Entry>();
  // Plaintext copies of pieces in progress, oldest first; `copied` counts the chunks placed in `buf`, and
  // `unwritten` marks those not written to the file yet: a chunk that lands in its piece's copy is written
  // with its neighbours (the whole piece in one write when it completes there, its runs of chunks when the
  // copy is evicted), not one 64 KiB write each. A piece whose copy was evicted is marked in
  // `pieceOnDiskOnly`; its later chunks are written one by one and it is checked from disk.
  interface PieceBuf { buf: Buffer; copied: number; unwritten: Uint8Array }
  const pieceBufs = new Map<number, PieceBuf>();
  // Pieces in hand: those being assembled, those waiting in the verification chain, and those lent to the
  // partial file until its running hash reaches them.
  const pieceSlab = createSlabPool(m.pieceSize, Math.min(m.pieces.length, 3 * maxPieceBuffers));
  const piecePool: Buffer[] = [];
  const pieceOnDiskOnly = new Uint8Array(m.pieces.length);
  /** Pieces whose evicted copy is being written: resolves false when that failed. */
  const flushes = new Map<number, Promise<boolean>>();
  const chunksIn = (p: number) => Math.min(chunkCount, (p + 1) * chunksPerPiece) - p * chunksPerPiece;
  const recycle = (pb: PieceBuf) => {
    if (!pieceSlab.give(pb.buf) && piecePool.length < maxPieceBuffers) piecePool.push(pb.buf);
  };
  /** Writes the chunks of piece p held only in its copy, one write per run of neighbours. */
  const flushPiece = async (p: number, pb: PieceBuf): Promise<void> => {
    const n = chunksIn(p);
    const writes: Array<Promise<void>> = [];
    let run = -1;
    for (let k = 0; k <= n; k++) {
      const held = k < n && pb.unwritten[k] === 1;
      if (held && run < 0) run = k;
      if (!held && run >= 0) {
        const to = Math.min(k * chunkSize, pieceLengthOf(p));
        writes.push(partial.writeAt((p * chunksPerPiece + run) * chunkSize, pb.buf.subarray(run * chunkSize, to)));
        run = -1;
      }
    }
    pb.unwritten.fill(0);
    await Promise.all(writes);
  };
  /** Forgets the chunks of piece p (they are asked for again). */
  const forgetPiece = (p: number) => {
    for (let k = p * chunksPerPiece; k < Math.min(chunkCount, (p + 1) * chunksPerPiece); k++) {
      if (state[k] === DONE) { state[k] = MISSING; pieceLeft[p]++; }
    }
  };
  const evictOldestPiece = () => {
    const oldest = pieceBufs.keys().next().value as number;
    const pb = pieceBufs.get(oldest)!;
    pieceBufs.delete(oldest);
    pieceOnDiskOnly[oldest] = 1;
    const done = flushPiece(oldest, pb).then(() => true, (err: unknown) => {
      log.warn('piece write failed; asking for it again', { piece: oldest, err });
      forgetPiece(oldest);
      return false;
    });
    flushes.set(oldest, done);
    io(-2 - oldest, 'piece write', 0, async () => {
      await done;
      if (flushes.get(oldest) === done) flushes.delete(oldest);
      recycle(pb);
    });
  };
  /** Copies chunk `c`'s plaintext into its piece's copy (evicting the oldest copy when all are used); false
   * when it has none, and the caller writes the chunk itself. */
  /** Where chunk c's plaintext goes in its piece's buffer (the buffer is taken when the piece has none yet), or
   * null when the piece goes to disk chunk by chunk. Nothing is marked until keptInPiece(c). */
  const pieceSlot = (c: number): Buffer | null => {
    if (maxPieceBuffers === 0) return null;
    const p = pieceOf(c);
    if (pieceOnDiskOnly[p]) return null;
    let pb = pieceBufs.get(p);
    if (!pb) {
      if (pieceLeft[p] < chunksIn(p)) { pieceOnDiskOnly[p] = 1; return null; } // earlier chunks went to disk only
      if (pieceBufs.size >= maxPieceBuffers) evictOldestPiece();
      pb = { buf: pieceSlab.take() ?? piecePool.pop() ?? Buffer.allocUnsafe(m.pieceSize), copied: 0, unwritten: new Uint8Array(chunksPerPiece) };
      pieceBufs.set(p, pb);
    }
    const at = (c - p * chunksPerPiece) * chunkSize;
    return pb.buf.subarray(at, at + plainLength(c));
  };
  /** Chunk c's plaintext is in its piece's buffer (written there through pieceSlot). */
  const keptInPiece = (c: number): void => {
    const pb = pieceBufs.get(pieceOf(c))!;
    pb.copied++;
    pb.unwritten[c - pieceOf(c) * chunksPerPiece] = 1;
  };
  const spilled = new Map<number, Entry>();
  const stats: MulticastReceiverStats = {
    datagrams: 0, bytes: 0, duplicates: 0,
    rejected: { malformed: 0, wrongTransfer: 0, auth: 0, overload: 0 },
    chunks: 0, pieces: 0, pieceFailures: 0, spilled: 0, restored: 0, simulatedDrops: 0, recvBufferBytes: 0, receiveOffload: false, coalescedDatagrams: 0, peakDiskQueueBytes: 0, firstDataAt: null,
  };
  let socket: { close(): Promise<void> } | null = null;
  /** True while datagrams arrive through batch I/O (their bytes are only valid during the call). */
  let batchInput = false;
  let readHandle: Promise<FileHandle> | null = null;
  let stopped = false;
  let lastPassEnd = 0;
  let passDatagrams = 0;
  /** Datagrams of this batch that arrived but were dropped because the receiver could not keep up. */
  let passOverload = 0;
  let windowSent = 0;
  let windowGot = 0;
  /** Datagrams of the window dropped for overload (counted in windowGot too: they arrived). */
  let windowOverload = 0;
  let overloadRate = 0;
  // Until an end-of-pass marker arrives this receiver has heard nothing it can measure: report total loss,
  // which is how the sender tells a receiver multicast does not reach (a poisoned or slow receiver that did
  // hear the marker reports its real loss instead).
  let lossRate = 1;
  const passWaiters = new Set<() => void>();
  const completeWaiters = new Set<() => void>();

  // Disk work is chained per chunk (a spilled chunk's ciphertext writes land before the read-back that opens
  // it) and verifications run one at a time on their own chain; different chunks proceed in parallel (a
  // single global queue fell seconds behind at 2% loss, when most chunks go through the spill path).
  const VERIFY_CHAIN = -1;
  const chains = new Map<number, Promise<void>>();
  let ioQueuedBytes = 0;
  let lateTotal = 0;
  const forgetLate = (e: Entry) => {
    lateTotal -= e.lateBytes;
    e.late = null;
    e.parity = null;
    e.lateBytes = 0;
  };
  let ioPending = 0;
  const idleWaiters = new Set<() => void>();
  const io = (chain: number, what: string, bytes: number, fn: () => Promise<void>) => {
    ioQueuedBytes += bytes;
    if (ioQueuedBytes > stats.peakDiskQueueBytes) stats.peakDiskQueueBytes = ioQueuedBytes;
    ioPending++;
    const next: Promise<void> = (chains.get(chain) ?? Promise.resolve())
      .then(fn)
      .catch((err: unknown) => log.warn('disk operation failed', { what, err }))
      .finally(() => {
        ioQueuedBytes -= bytes;
        ioPending--;
        if (chains.get(chain) === next) chains.delete(chain);
        if (ioPending === 0) for (const w of idleWaiters) w();
      });
    chains.set(chain, next);
  };
  /** Resolves when no disk work is pending (work may queue more work: waits for all of it). */
  const ioIdle = () => (ioPending === 0 ? Promise.resolve() : new Promise<void>((resolve) => {
    const w = () => { idleWaiters.delete(w); resolve(); };
    idleWaiters.add(w);
  }));
  const ioFull = () => ioQueuedBytes >= MAX_IO_QUEUED_BYTES;

  const plainLength = (c: number) => Math.min(chunkSize, m.size - c * chunkSize);
  const pieceOf = (c: number) => Math.floor(c / chunksPerPiece);
  const pieceLengthOf = (p: number) => Math.min(m.pieceSize, m.size - p * m.pieceSize);

  function resetFromPartial(): void {
    state.fill(MISSING);
    pieceLeft.fill(0);
    for (let c = 0; c < chunkCount; c++) {
      if (partial.has(pieceOf(c))) state[c] = DONE;
      else pieceLeft[pieceOf(c)]++;
    }
  }
  resetFromPartial();

  function checkComplete(): void {
    if (!partial.complete) return;
    for (const w of completeWaiters) w();
  }

  function markChunkDone(c: number): void {
    state[c] = DONE;
    stats.chunks++;
    const p = pieceOf(c);
    if (--pieceLeft[p] === 0) {
      // The piece's copy leaves the map so that no newer piece takes it over while the verification waits.
      const pb = pieceBufs.get(p);
      pieceBufs.delete(p);
      pieceOnDiskOnly[p] = 0;
      const flushing = flushes.get(p);
      const bytes = pb && pb.copied === chunksIn(p) ? pb.buf.subarray(0, pieceLengthOf(p)) : undefined;
      // The write starts now, beside the writes of the pieces still waiting on the verification chain, not
      // after them: on a busy machine one 4 MiB write at a time fell behind the 50 MB/s of a 400 Mbit/s pass.
      const written = pb ? flushPiece(p, pb) : null;
      written?.catch(() => undefined); // awaited below, in order; failures are handled there
      io(VERIFY_CHAIN, 'verify', bytes?.length ?? 0, async () => {
        let recorded: Promise<boolean>;
        let lent = false;
        try {
          // A piece has either its copy (written above) or an evicted copy being flushed, never both.
          if (written) await written;
          else if (flushing && !(await flushing)) {
            forgetPiece(p); // its evicted copy did not reach the file: the piece is asked for again
            return;
          }
          // Every chunk of the piece passed AES-GCM under the transfer key: the piece is accepted without its
          // own hash, and the whole-file hash at finalize() decides (checkPieces: hash each piece as well).
          if (options.checkPieces) recorded = partial.verifyPiece(p, bytes);
          else if (pb && bytes) {
            // Lent, not copied: a piece that completes ahead of the running whole-file hash (most of them
            // while chunks wait for repair) stays in this buffer until the hash reaches it.
            lent = true;
            recorded = partial.acceptPiece(p, bytes, () => recycle(pb)).then(() => true);
          } else recorded = partial.acceptPiece(p, bytes).then(() => true);
        } catch (err) {
          recorded = Promise.reject(err as Error);
        }
        recorded.catch(() => undefined); // awaited below, maybe after other work on the piece's chain
        // The piece is marked by now; the sidecar that records it is written beside the next pieces' work.
        // Waiting for it here (a file write and a rename per piece, one piece at a time) let the chain fall
        // behind the pass on a busy machine, and a receiver whose disk queue is full drops datagrams.
        io(-2 - p, 'record', 0, async () => {
          let ok: boolean;
          try {
            ok = await recorded;
          } catch (err) {
            log.warn('piece write failed; asking for it again', { piece: p, err });
            ok = false;
          } finally {
            if (pb && !lent) recycle(pb); // `written` and the verification have settled by now
          }
          if (ok) {
            stats.pieces++;
            checkComplete();
          } else {
            stats.pieceFailures++;
            log.warn('piece failed verification after multicast; asking for it again', { piece: p });
            forgetPiece(p);
          }
        });
      });
    }
  }

  function openAndWrite(c: number, e: Entry, sealed: Uint8Array): Promise<void> {
    // Decrypted straight into the piece's buffer when the piece is assembled in memory, else over the sealed
    // bytes (not needed after this).
    const slot = pieceSlot(c);
    let plain: Buffer;
    try {
      plain = sealer.open(c, e.epoch, sealed, slot ?? sealed);
    } catch {
      stats.rejected.auth++;
      state[c] = MISSING;
      return Promise.resolve();
    }
    if (slot) {
      keptInPiece(c);
      markChunkDone(c);
      return Promise.resolve();
    }
    return partial.writeAt(c * chunkSize, plain).then(() => markChunkDone(c), (err: unknown) => {
      state[c] = MISSING;
      log.warn('chunk write failed', { chunk: c, err });
    });
  }

  function readHandleOnce(): Promise<FileHandle> {
    readHandle ??= open(partial.tempPath, 'r');
    return readHandle;
  }

  // Spilled chunks completed by a repair pass are read back a few at a time: a repair pass completes
  // thousands within a second, and each read-back holds a sealed chunk in memory while it runs. Queued ones
  // hold nothing, so they do not count towards MAX_IO_QUEUED_BYTES (which would drop the repair datagrams
  // that follow and cost another pass).
  let readBacksRunning = 0;
  const readBackWaiters: Array<() => void> = [];
  async function openSpilled(c: number, e: Entry): Promise<void> {
    if (readBacksRunning >= MAX_READ_BACKS) await new Promise<void>((resolve) => readBackWaiters.push(resolve));
    readBacksRunning++;
    try {
      await openSpilledNow(c, e);
    } finally {
      readBacksRunning--;
      readBackWaiters.shift()?.();
    }
  }

  async function openSpilledNow(c: number, e: Entry): Promise<void> {
    const len = plainLength(c);
    const sealed = Buffer.allocUnsafe(len + SEAL_TAG_BYTES);
    const fh = await readHandleOnce();
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(sealed, got, len - got, c * chunkSize + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== len) {
      forgetLate(e);
      state[c] = MISSING;
      return;
    }
    e.tag!.copy(sealed, len);
    for (const [off, bytes] of e.late ?? []) bytes.copy(sealed, off);
    try {
      restore(e, sealed);
    } catch (err) {
      log.warn('parity restore failed', { chunk: c, err });
    }
    forgetLate(e);
    await openAndWrite(c, e, sealed);
  }

  function complete(c: number, e: Entry): void {
    mem.delete(c);
    spilled.delete(c);
    // Never dropped here: every byte is in already. Input is throttled in onData instead.
    state[c] = COMPLETING;
    if (e.buf) {
      const sealed = e.buf;
      try {
        restore(e, sealed);
      } catch (err) {
        log.warn('parity restore failed', { chunk: c, err });
      }
      forgetLate(e);
      io(c, 'chunk', sealed.length, () => openAndWrite(c, e, sealed).finally(() => releaseBuffer(e)));
    } else {
      io(c, 'spilled chunk', 0, () => openSpilled(c, e));
    }
  }

  /** Places sealed bytes [off, off+bytes) of a spilled chunk: ciphertext to disk (or to memory when `late`
   * and within budget: a fragment arriving after the spill, typically the one a repair pass resends), tag
   * bytes to memory. */
  function placeSpilled(c: number, e: Entry, off: number, bytes: Uint8Array, late = false, transient = false): void {
    const len = plainLength(c);
    if (off < len) {
      const ct = bytes.subarray(0, Math.min(bytes.length, len - off));
      if (late && e.lateBytes + ct.length <= MAX_LATE_PER_CHUNK && lateTotal + ct.length <= MAX_LATE_TOTAL) {
        (e.late ??= []).push([off, Buffer.from(ct)]);
        e.lateBytes += ct.length;
        lateTotal += ct.length;
      } else {
        // Bytes of a batch receive buffer are overwritten by the next batch: the queued write needs its own copy.
        const own = transient ? Buffer.from(ct) : ct;
        io(c, 'spill', ct.length, () => partial.writeAt(c * chunkSize + off, own));
      }
    }
    const tagFrom = Math.max(off, len);
    if (off + bytes.length > len) e.tag!.set(bytes.subarray(tagFrom - off), tagFrom - len);
  }

  /** An arriving datagram dropped because the disk or the memory budget is full. */
  function droppedForOverload(): void {
    stats.rejected.overload++;
    passOverload++;
  }

  function spillOldest(): void {
    const first = mem.entries().next();
    if (first.done) return;
    const [c, e] = first.value;
    mem.delete(c);
    if (spilled.size >= MAX_SPILLED) {
      stats.rejected.overload++;
      passOverload += e.gotCount; // datagrams that arrived and are thrown away: the sender is too fast for us
      forgetLate(e);
      releaseBuffer(e);
      return;
    }
    const buf = e.buf!;
    const backing = e.backing;
    const sealedLen = plainLength(c) + SEAL_TAG_BYTES;
    e.buf = null;
    e.backing = null;
    e.tag = Buffer.alloc(SEAL_TAG_BYTES);
    // Coalesce runs of received fragments into one write each.
    let runStart = -1;
    for (let f = 0; f <= e.count; f++) {
      const have = f < e.count && e.got[f] === 1;
      if (have && runStart < 0) runStart = f;
      if (!have && runStart >= 0) {
        const a = fragmentSpan(sealedLen, e.count, runStart).offset;
        const last = fragmentSpan(sealedLen, e.count, f - 1);
        placeSpilled(c, e, a, buf.subarray(a, last.offset + last.length));
        runStart = -1;
      }
    }
    // The spill writes read from the buffer: it goes back to the pool only after them (the queue is serial).
    io(c, 'release', 0, async () => releaseBuffer({ ...e, backing, buf }));
    spilled.set(c, e);
    stats.spilled++;
  }

  /** DATA datagram `f` whose payload is src[f.payloadStart, +f.payloadLength). */
  function onData(f: DatagramFields, src: Buffer): void {
    const c = f.chunk;
    if (c >= chunkCount) { stats.rejected.malformed++; return; }
    const sealedLen = plainLength(c) + SEAL_TAG_BYTES;
    if (f.fragments > sealedLen) { stats.rejected.malformed++; return; }
    // fragmentSpan, inlined: this runs for every datagram.
    const size = Math.ceil(sealedLen / f.fragments);
    const offset = f.fragment * size;
    const length = Math.max(0, Math.min(size, sealedLen - offset));
    if (length !== f.payloadLength || length === 0) { stats.rejected.malformed++; return; }
    passDatagrams++;
    if (state[c] !== MISSING) { stats.duplicates++; return; }
    let e = mem.get(c) ?? spilled.get(c);
    // The disk fell behind: drop what would add disk work (a new chunk that may need a spill, a fragment of a
    // spilled chunk); the next pass repairs it. Fragments of chunks held in memory cost no disk work.
    if (ioFull() && (!e || !e.buf)) {
      droppedForOverload();
      return;
    }
    if (e && (e.epoch !== f.epoch || e.count !== f.fragments)) {
      // A newer epoch replaces what we held (the sender resealed); anything else inconsistent is dropped.
      if (f.epoch <= e.epoch) { stats.rejected.malformed++; return; }
      mem.delete(c);
      spilled.delete(c);
      if (e.buf) releaseBuffer(e);
      forgetLate(e);
      e = undefined;
    }
    if (!e) {
      if (mem.size >= maxMem) spillOldest();
      const backing = takeBuffer();
      e = { epoch: f.epoch, count: f.fragments, got: new Uint8Array(f.fragments), gotCount: 0, buf: backing.subarray(0, sealedLen), backing, tag: null, late: null, lateBytes: 0, parity: null };
      mem.set(c, e);
    }
    if (e.got[f.fragment] === 1) { stats.duplicates++; return; }
    e.got[f.fragment] = 1;
    e.gotCount++;
    if (e.buf) src.copy(e.buf, offset, f.payloadStart, f.payloadStart + length);
    else placeSpilled(c, e, offset, src.subarray(f.payloadStart, f.payloadStart + length), true, batchInput);
    if (e.gotCount + (e.parity?.length ?? 0) >= e.count) complete(c, e);
  }

  /** PARITY datagram `f` (parity index in f.fragment, the chunk's data fragment count in f.fragments). */
  function onParity(f: DatagramFields, src: Buffer): void {
    const c = f.chunk;
    if (c >= chunkCount) { stats.rejected.malformed++; return; }
    const sealedLen = plainLength(c) + SEAL_TAG_BYTES;
    if (f.fragments > sealedLen || f.fragment >= maxParity(f.fragments)) { stats.rejected.malformed++; return; }
    if (f.payloadLength !== Math.ceil(sealedLen / f.fragments)) { stats.rejected.malformed++; return; }
    passDatagrams++;
    if (state[c] !== MISSING) { stats.duplicates++; return; }
    let e = mem.get(c) ?? spilled.get(c);
    if (e && (e.epoch !== f.epoch || e.count !== f.fragments)) { stats.rejected.malformed++; return; }
    if (e?.parity?.some((q) => q.index === f.fragment)) { stats.duplicates++; return; }
    // Kept in memory whatever happens to the chunk's data fragments, within the late-fragment budget.
    if (lateTotal + f.payloadLength > MAX_LATE_TOTAL) { droppedForOverload(); return; }
    if (!e) {
      if (ioFull()) { droppedForOverload(); return; }
      if (mem.size >= maxMem) spillOldest();
      const backing = takeBuffer();
      e = { epoch: f.epoch, count: f.fragments, got: new Uint8Array(f.fragments), gotCount: 0, buf: backing.subarray(0, sealedLen), backing, tag: null, late: null, lateBytes: 0, parity: null };
      mem.set(c, e);
    }
    (e.parity ??= []).push({ index: f.fragment, bytes: Buffer.from(src.subarray(f.payloadStart, f.payloadStart + f.payloadLength)) });
    e.lateBytes += f.payloadLength;
    lateTotal += f.payloadLength;
    if (e.gotCount + e.parity.length >= e.count) complete(c, e);
  }

  /** Restores the data fragments of `sealed` that `e` lacks from its parity fragments (enough are held). */
  function restore(e: Entry, sealed: Uint8Array): void {
    if (!e.parity || e.gotCount === e.count) return;
    const missing: number[] = [];
    for (let f = 0; f < e.count; f++) if (e.got[f] === 0) missing.push(f);
    recoverFragments(sealed, e.count, missing, e.parity.slice(0, missing.length));
    stats.restored += missing.length;
  }

  const fields = datagramFields();
  /** The datagram at src[at, at + length); `view` is a DataView over all of src. */
  function onMessage(src: Buffer, view: DataView, at: number, length: number): void {
    stats.datagrams++;
    stats.bytes += length;
    if (dropRate > 0 && Math.random() < dropRate) { stats.simulatedDrops++; return; }
    try {
      readDatagramAt(view, at, length, fields);
    } catch {
      stats.rejected.malformed++;
      return;
    }
    for (let i = 0; i < TRANSFER_ID_BYTES; i++) {
      if (src[at + 4 + i] !== tid[i]) { stats.rejected.wrongTransfer++; return; }
    }
    stats.firstDataAt ??= Date.now();
    if (fields.kind === DatagramKind.DATA) {
      onData(fields, src);
    } else if (fields.kind === DatagramKind.PARITY) {
      onParity(fields, src);
    } else if (fields.chunk > lastPassEnd) {
      // PASS_END (readDatagramAt accepts no other kind): fields.chunk is the pass number.
      lastPassEnd = fields.chunk;
      // Loss over the last LOSS_WINDOW datagrams or more: a small repair batch alone says little.
      windowSent += fields.sent;
      windowGot += passDatagrams;
      passDatagrams = 0;
      windowOverload += passOverload;
      passOverload = 0;
      if (windowSent >= LOSS_WINDOW || lossRate === 1) {
        lossRate = windowSent > 0 ? Math.min(1, Math.max(0, 1 - windowGot / windowSent)) : 0;
        overloadRate = windowSent > 0 ? Math.min(1, windowOverload / windowSent) : 0;
        if (windowSent >= LOSS_WINDOW) windowSent = windowGot = windowOverload = 0;
      }
      for (const w of passWaiters) w();
    }
  }

  const receiver: MulticastReceiver = {
    stats,
    async start() {
      if (socket) return;
      stopped = false;
      if (m.size === 0 && !partial.has(0)) await partial.verifyPiece(0);
      const want = options.recvBufferBytes ?? 16 * 1024 * 1024;
      const handle = (src: Buffer, view: DataView, at: number, length: number) => {
        try {
          onMessage(src, view, at, length);
        } catch (err) {
          stats.rejected.malformed++;
          log.debug('datagram handler failed', { err });
        }
      };
      const batch = options.io === 'dgram' ? null : loadBatchUdp();
      let batchBuf: Buffer | null = null;
      let batchView: DataView | null = null;
      if (options.io === 'batch' && !batch) throw new ShoalError(ErrorCode.BAD_REQUEST, 'batched UDP I/O is not built here (npm install builds it)');
      if (batch) {
        try {
          const b = batch.openReceiver({
            group: options.address, port: options.port, iface: options.interface, recvBufferBytes: want,
            onDatagram: (buf, start, length) => {
              if (length < 0) {
                stats.datagrams++;
                stats.rejected.malformed++;
                return;
              }
              if (buf !== batchBuf) {
                batchBuf = buf;
                batchView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
              }
              handle(buf, batchView!, start, length);
            },
            onError: (err) => log.warn('socket error', { err }),
          });
          batchInput = true;
          stats.recvBufferBytes = b.recvBufferBytes;
          stats.receiveOffload = b.receiveOffload;
          Object.defineProperty(stats, 'coalescedDatagrams', { get: () => b.coalesced(), enumerable: true });
          socket = { close: async () => b.close() };
        } catch (err) {
          throw new ShoalError(ErrorCode.UNREACHABLE, `cannot join ${options.address} on ${options.interface ?? 'default interface'}`, undefined, { cause: err });
        }
      } else {
        const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
        s.on('error', (err) => log.warn('socket error', { err }));
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          // Bound to the group address, not 0.0.0.0: Linux would otherwise also deliver datagrams of other
          // groups joined on this host with the same port.
          s.bind({ port: options.port, address: options.address, exclusive: false }, () => {
            s.off('error', reject);
            resolve();
          });
        });
        try {
          s.addMembership(options.address, options.interface);
          try {
            s.setRecvBufferSize(want);
          } catch (err) {
            log.warn('could not set receive buffer', { want, err });
          }
          stats.recvBufferBytes = s.getRecvBufferSize();
        } catch (err) {
          s.close();
          throw new ShoalError(ErrorCode.UNREACHABLE, `cannot join ${options.address} on ${options.interface ?? 'default interface'}`, undefined, { cause: err });
        }
        s.on('message', (msg: Buffer) => handle(msg, new DataView(msg.buffer, msg.byteOffset, msg.byteLength), 0, msg.length));
        batchInput = false;
        socket = { close: () => new Promise<void>((resolve) => s.close(() => resolve())) };
      }
      // Linux reports twice the size it grants (the other half is its bookkeeping).
      const level = stats.recvBufferBytes < 2 * want ? 'warn' : 'info';
      log[level]('joined multicast group', {
        group: options.address, port: options.port, interface: options.interface, io: batch ? 'batch' : 'dgram', receiveOffload: stats.receiveOffload, recvBufferAsked: want, recvBufferGranted: stats.recvBufferBytes, chunks: chunkCount, resumedChunks: chunkCount - countMissing(),
        ...(level === 'warn' ? { hint: `a small receive buffer loses datagrams when this machine is busy; allow more with: sysctl -w net.core.rmem_max=${want}` } : {}),
      });
      checkComplete();
    },
    async stop() {
      stopped = true;
      const s = socket;
      socket = null;
      if (s) await s.close();
      await ioIdle();
      const fh = readHandle;
      readHandle = null;
      if (fh) await (await fh.catch(() => null))?.close();
      mem.clear();
      spilled.clear();
      lateTotal = 0;
      pool.length = 0;
      // Chunks held only in piece copies never reached the file: they are missing again.
      for (const [p, pb] of pieceBufs) if (pb.unwritten.some((u) => u === 1)) forgetPiece(p);
      pieceBufs.clear();
      piecePool.length = 0;
      for (const w of completeWaiters) w();
      for (const w of passWaiters) w();
    },
    async [Symbol.asyncDispose]() {
      await receiver.stop();
    },
    status() {
      const missing: ChunkRange[] = [];
      const partialList: Array<[number, number[]]> = [];
      let listed = 0;
      let runStart = -1;
      const flush = (end: number) => {
        if (runStart < 0) return;
        if (missing.length >= maxRanges) missing[missing.length - 1][1] = end;
        else missing.push([runStart, end]);
        runStart = -1;
      };
      for (let c = 0; c < chunkCount; c++) {
        // A chunk with every fragment in hand counts as held even while it is being opened and written: waiting
        // for the disk before answering cost every pass a turnaround. If it then fails (a forged fragment, a
        // write error) it is missing again: the next pass sends it, or the swarm does after the last one.
        if (state[c] === DONE || state[c] === COMPLETING) { flush(c); continue; }
        const e = mem.get(c) ?? spilled.get(c);
        // Parity fragments held stand in for as many missing ones: only the rest are asked for.
        const lacking = e ? e.count - e.gotCount - (e.parity?.length ?? 0) : 0;
        if (e && e.gotCount > 0 && lacking <= e.count / 2 && listed + lacking <= maxPartialFragments) {
          flush(c);
          const frags: number[] = [];
          for (let f = 0; f < e.count && frags.length < lacking; f++) if (e.got[f] === 0) frags.push(f);
          partialList.push([c, frags]);
          listed += frags.length;
          continue;
        }
        if (runStart < 0) runStart = c;
      }
      flush(chunkCount);
      return { receiverId, missing, partial: partialList, received: chunkCount - countMissing(), lossRate, overloadRate };
    },
    async waitPassEnd(pass, timeoutMs, signal) {
      const seen = lastPassEnd >= pass || (await new Promise<boolean>((resolve) => {
        const done = (v: boolean) => {
          clearTimeout(timer);
          passWaiters.delete(w);
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        };
        const w = () => { if (lastPassEnd >= pass || stopped) done(lastPassEnd >= pass); };
        const onAbort = () => done(false);
        const timer = setTimeout(() => done(false), timeoutMs);
        passWaiters.add(w);
        signal?.addEventListener('abort', onAbort, { once: true });
      }));
      return seen;
    },
    whenComplete(signal) {
      if (partial.complete) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const done = () => {
          completeWaiters.delete(w);
          signal?.removeEventListener('abort', onAbort);
        };
        const w = () => {
          if (partial.complete) { done(); resolve(); }
          else if (stopped) { done(); reject(new ShoalError(ErrorCode.ABORTED, 'receiver stopped before the file was complete')); }
        };
        const onAbort = () => { done(); reject(new ShoalError(ErrorCode.ABORTED, 'aborted')); };
        if (signal?.aborted) return onAbort();
        completeWaiters.add(w);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };

  function countMissing(): number {
    let n = 0;
    for (let c = 0; c < chunkCount; c++) if (state[c] !== DONE) n++;
    return n;
  }

  return receiver;
}
