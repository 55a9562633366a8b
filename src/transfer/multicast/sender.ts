/**
 * Multicast sender: reads a file in chunks (bounded read-ahead, flat memory for any size), seals each chunk
 * once (AES-256-GCM), cuts it into MTU-sized datagrams and sends them to the group, paced by a token bucket
 * that counts whole frames (payload + UDP/IP/Ethernet headers) so that `rateBps` means what a link shaper
 * sees. The transfer runs in passes: pass 1 sends everything; then the sender asks every receiver what it
 * lacks (deps.collectStatus) and the next pass sends only the union — whole chunks, or single fragments of
 * chunks a receiver holds in part. Where several receivers lack different fragments of a chunk, parity
 * fragments (erasure.ts) repair them all at once: as many as the neediest receiver lacks, not the union. It
 * stops when nobody misses anything or after `maxPasses`; receivers that still lack something finish through
 * the swarm. The rate backs off when receivers report heavy loss, or any real share of datagrams they had to
 * drop because they could not keep up (overload), and climbs back towards the ceiling when they do not (slowly
 * once a receiver was overloaded), never below `minRateBps`.
 */
import dgram from 'node:dgram';
import type { BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSlabPool } from './huge-buffer.ts';
import type { Logger } from '../../logger.ts';
import type { Manifest } from '../../protocol/api.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import { encodeDatagram, fragmentLayout, fragmentSpan, writeHeader } from '../../protocol/datagram.ts';
import {
  DATAGRAM_HEADER_BYTES,
  DatagramKind,
  ETHERNET_OVERHEAD_BYTES,
  IP_UDP_OVERHEAD_BYTES,
  MAX_DATAGRAM_BYTES,
} from '../../protocol/datagram-types.ts';
import { createChunkSealer, SEAL_TAG_BYTES, wireTransferId } from '../../crypto/chunk-seal.ts';
import { missingChunkCount, planRepair, type ReceiverStatus } from './receiver-status.ts';
import { BATCH_SLOT_BYTES, loadBatchUdp } from './batch-udp.ts';
import { encodeParity, maxParity } from './erasure.ts';

export interface MulticastSenderDeps {
  logger: Logger;
  /**
   * Asks every receiver of the transfer for its status as of end-of-batch marker `marker` (the receivers wait
   * for it; bounded by the caller). `pass` is the pass that batch belongs to (progress only). The sender
   * never has two requests outstanding.
   */
  collectStatus(marker: number, signal: AbortSignal, pass: number): Promise<ReceiverStatus[]>;
}

export interface MulticastSenderOptions {
  /** Group address (IPv4 multicast). */
  address: string;
  /** Group UDP port. */
  port: number;
  /** Local interface address to send from (multi-homed hosts); the kernel's route decides when omitted. */
  interface?: string;
  /** Multicast TTL (default 1: the local link only). */
  ttl?: number;
  /** Deliver to listeners on this host too (default true: an agent may run beside the coordinator). */
  loopback?: boolean;
  /** Path MTU, bytes (default 1500, at most 9244: a 9216-byte jumbo payload). */
  mtu?: number;
  /** Plaintext bytes per sealed chunk (see defaultChunkSize); must divide the piece size. */
  chunkSize: number;
  /** Rate ceiling, bits/s on the wire (frames incl. UDP/IP/Ethernet headers). */
  rateBps: number;
  /** Floor of the adaptive rate, bits/s (default rateBps / 8). */
  minRateBps?: number;
  /** Most passes, the first included (default 8). */
  maxPasses?: number;
  /** 32-byte AES-256-GCM key. */
  key: Uint8Array;
  /** Transfer id (the string the coordinator hands out) or its 8-byte wire form. */
  transferId: string | Uint8Array;
  /** Nonce generation: bump it when a transfer is restarted with the same key (default 0). */
  epoch?: number;
  manifest: Manifest;
  /** The file to send. */
  path: string;
  /** SO_SNDBUF, bytes (default 1 MiB: large enough for bursts, small enough that a shaper back-pressures
   * the socket instead of dropping). */
  sendBufferBytes?: number;
  /** File bytes read ahead of the sender, bytes (default 8 MiB). */
  readAheadBytes?: number;
  /** Pause after the end-of-pass marker before asking for status, ms (default 5: receivers answer once they
   * saw the marker, which follows the pass's data). */
  passGraceMs?: number;
  /** Loss rate above which the rate backs off (default 0.1). */
  backoffLoss?: number;
  /** Overload rate (datagrams a receiver dropped because it could not keep up) above which the rate backs
   * off (default 0.01). Once it has, the rate climbs back slowly. */
  backoffOverload?: number;
  /** Socket I/O: 'batch' (sendmmsg through build/shoal_udp.node), 'dgram' (node:dgram) or 'auto' (default:
   * batch where it is built). */
  io?: 'auto' | 'batch' | 'dgram';
  /**
   * Loss rate at or above which, two passes in a row, a receiver counts as not reached by multicast (a
   * router, a firewall); such a receiver, and one that heard nothing at all (a late join), is left out of
   * repair passes and of rate adaptation and finishes through the swarm (default 0.5).
   */
  unreachedLoss?: number;
  /** Repair with parity fragments where they save datagrams (default true; false: missing fragments only). */
  parity?: boolean;
}

/** What one pass did. */
export interface PassReport {
  pass: number;
  /** Chunks touched (whole or in part). */
  chunks: number;
  /** DATA datagrams sent. */
  datagrams: number;
  /** Bytes on the wire incl. UDP/IP/Ethernet headers. */
  wireBytes: number;
  /** Pacing rate of this pass, bits/s. */
  rateBps: number;
  /** Duration of the sending part, ms. */
  ms: number;
  /** Per receiver: chunks still incomplete after the pass. */
  missing: Record<string, number>;
  /** Per receiver: reported loss rate of the pass. */
  loss: Record<string, number>;
}

export interface SendResult {
  passes: PassReport[];
  /** True when every receiver that answered holds everything. */
  complete: boolean;
  /** Receivers that still lack chunks (they finish through the swarm). */
  incomplete: string[];
  /** Receivers left out of repair because multicast does not reach them (a subset of `incomplete`). */
  unreached: string[];
  /** Rate the sender ended at, bits/s. */
  finalRateBps: number;
  /** DATA datagrams over all passes. */
  datagrams: number;
  /** Wire bytes over all passes (DATA and markers). */
  wireBytes: number;
}

export interface MulticastSender {
  /** Sends the file to the group until every receiver has it or the passes run out. */
  run(signal: AbortSignal): Promise<SendResult>;
}

/** Most bytes one read of the source covers (several chunks). */
const READ_RUN_BYTES = 1024 * 1024;
/** Unneeded bytes a read may span between two needed ranges rather than becoming two reads. */
const READ_GAP_BYTES = 128 * 1024;

/** A chunk size whose sealed form fills whole datagrams at `mtu` and stays near 64 KiB, bytes. */
export function defaultChunkSize(_mtu = 1500): number {
  // Pieces are 4 MiB (or a smaller power of two) and chunks must divide them: 64 KiB costs 0.15% more frames
  // than a size fitted to the MTU, which is not worth a non-aligned geometry.
  return 64 * 1024;
}

/** Creates a sender for one transfer. */
export function createMulticastSender(deps: MulticastSenderDeps, options: MulticastSenderOptions): MulticastSender {
  const log = deps.logger.child('multicast:sender');
  const m = options.manifest;
  const chunkSize = options.chunkSize;
  const mtu = options.mtu ?? 1500;
  // At most a jumbo frame: receivers read into slots of BATCH_SLOT_BYTES.
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > Math.min(MAX_DATAGRAM_BYTES, BATCH_SLOT_BYTES) + IP_UDP_OVERHEAD_BYTES) throw new ShoalError(ErrorCode.BAD_REQUEST, `mtu ${mtu} out of range (576 to ${BATCH_SLOT_BYTES + IP_UDP_OVERHEAD_BYTES})`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 16 * 1024 * 1024) throw new ShoalError(ErrorCode.BAD_REQUEST, 'chunk size out of range');
  if (m.pieces.length > 1 && m.pieceSize % chunkSize !== 0) throw new ShoalError(ErrorCode.BAD_REQUEST, 'chunk size must divide the piece size');
  if (!(options.rateBps > 0)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'rate must be positive');
  const maxPayload = mtu - IP_UDP_OVERHEAD_BYTES - DATAGRAM_HEADER_BYTES;
  const tid = typeof options.transferId === 'string' ? wireTransferId(options.transferId) : options.transferId;
  const sealer = createChunkSealer(options.key, tid);
  const epoch = options.epoch ?? 0;
  const chunkCount = Math.ceil(m.size / chunkSize);
  const plainLength = (c: number) => Math.min(chunkSize, m.size - c * chunkSize);
  const layout = (c: number) => fragmentLayout(plainLength(c) + SEAL_TAG_BYTES, maxPayload);
  // Fragment geometry is checked up front (throws if a chunk needs too many fragments at this MTU).
  if (chunkCount > 0) layout(0);
  const ceiling = options.rateBps;
  const floor = Math.min(ceiling, options.minRateBps ?? ceiling / 8);
  const maxPasses = Math.max(1, options.maxPasses ?? 8);
  const readAheadBytes = options.readAheadBytes ?? 8 * 1024 * 1024;
  const runBytes = Math.max(READ_RUN_BYTES, chunkSize);
  const backoffLoss = options.backoffLoss ?? 0.1;
  const backoffOverload = options.backoffOverload ?? 0.01;
  const unreachedLoss = options.unreachedLoss ?? 0.5;
  /** Tag of each chunk's first seal: a reseal must reproduce it (same nonce must mean same plaintext). */
  const tags = Buffer.alloc(chunkCount * SEAL_TAG_BYTES);
  const tagKnown = new Uint8Array(chunkCount);
  const useParity = options.parity ?? true;
  /** Next unused parity index of each chunk: a receiver that holds parity fragments needs other ones. */
  const nextParity = new Uint8Array(chunkCount);
  /** The most recently sealed chunks (two seconds at the ceiling rate, at most 128 MiB): repairs during pass 1
   * ask for chunks sent one to four segments (~0.4 s each) earlier, and parity needs whole sealed chunks; on the
   * bed at N=8 and 2 % loss every repair found its chunk here (with one second, most did not). */
  const recent = new Map<number, Buffer>();
  const recentMax = Math.max(16, Math.min(Math.floor(128 * 1024 * 1024 / (chunkSize + SEAL_TAG_BYTES)), Math.ceil(2 * ceiling / 8 / chunkSize)));
  const remember = (c: number, sealed: Buffer) => {
    const before = recent.get(c);
    recent.delete(c);
    if (before && before !== sealed) reuse(before);
    recent.set(c, sealed);
    if (recent.size > recentMax) {
      const oldest = recent.keys().next().value as number;
      reuse(recent.get(oldest));
      recent.delete(oldest);
    }
  };

  /**
   * Buffers of sealed chunks and of datagrams are reused rather than allocated per chunk: the sender used to
   * allocate three buffers per chunk (about 770 MiB per 256 MiB sent), and its profile on the bed showed 0.41 s
   * of garbage collection and 0.28 s of copies into fresh memory in 1.9 s of work. A sealed chunk leaves the
   * pool while `recent` holds it and comes back when evicted (nothing else keeps it: datagrams are copies); a
   * datagram buffer comes back once every datagram in it has reached the kernel, which only the batched socket
   * can tell (SendSocket.sendsAtOnce). Only buffers allocated here (`mine`) go back.
   */
  const mine = new WeakSet<ArrayBufferLike>();
  const sealedPool: Buffer[] = [];
  const datagramPool: Buffer[] = [];
  const POOL_MAX = 16;
  const sealedBytes = Math.min(chunkSize, Math.max(m.size, 1)) + SEAL_TAG_BYTES;
  const datagramBytes = chunkCount > 0 ? (() => {
    const { count, size } = layout(0);
    return count * (DATAGRAM_HEADER_BYTES + size);
  })() : 0;
  const fresh = (bytes: number): Buffer => {
    const b = Buffer.allocUnsafeSlow(bytes);
    mine.add(b.buffer);
    return b;
  };
  // Sealed chunks are cut from one slab on huge pages (huge-buffer.ts), a slot for each chunk `recent` may hold
  // and for the pool, carved as needed: 100 MiB written into fresh 4 KiB pages cost the sender 0.1-0.3 s of page
  // faults on the bed. Slots go back to the pool whenever they come back, whatever the pool holds.
  const slab = createSlabPool(sealedBytes, Math.min(chunkCount, recentMax + POOL_MAX + 2));
  const takeSealed = (): Buffer => slab.take() ?? sealedPool.pop() ?? fresh(sealedBytes);
  const takeDatagrams = (bytes: number): Buffer => {
    const b = datagramPool.pop();
    if (b && b.length >= bytes) return b;
    if (b) datagramPool.push(b);
    return fresh(Math.max(bytes, datagramBytes));
  };
  function reuse(b: Uint8Array | undefined): void {
    if (!b || slab.give(b) || !mine.has(b.buffer)) return;
    const whole = Buffer.from(b.buffer, 0, b.buffer.byteLength);
    const pool = whole.length === sealedBytes ? sealedPool : datagramPool;
    if (pool.length < POOL_MAX) pool.push(whole);
  }

  /** The send side of the transfer: batched (sendmmsg) where built, else node:dgram. */
  interface SendSocket {
    /** Sends list[from..to) without waiting; returns how many went (fewer: the socket buffer is full). */
    send(list: Uint8Array[], from: number, to: number): number;
    /** Bytes queued in user space, not yet handed to the kernel (always 0 for the batched socket). */
    queuedBytes(): number;
    queuedCount(): number;
    /** True when send() has handed the bytes to the kernel by the time it returns, so the caller may reuse
     * them: the batched socket (sendmmsg). node:dgram sends on a later tick, after its address lookup. */
    sendsAtOnce: boolean;
    close(): Promise<void>;
  }

  async function openSocket(): Promise<SendSocket> {
    const want = options.sendBufferBytes ?? 1024 * 1024;
    const batch = options.io === 'dgram' ? null : loadBatchUdp();
    if (options.io === 'batch' && !batch) throw new ShoalError(ErrorCode.BAD_REQUEST, 'batched UDP I/O is not built here (npm install builds it)');
    if (batch) {
      const b = batch.openSender({ group: options.address, port: options.port, iface: options.interface, ttl: options.ttl ?? 1, loopback: options.loopback ?? true, sendBufferBytes: want });
      log.info('sending to multicast group', { group: options.address, port: options.port, interface: options.interface, io: 'batch', sendBufferGranted: b.sendBufferBytes, chunks: chunkCount, size: m.size });
      return { send: b.send, queuedBytes: () => 0, queuedCount: () => 0, sendsAtOnce: true, close: async () => b.close() };
    }
    const s = dgram.createSocket({ type: 'udp4' });
    s.on('error', (err) => log.warn('socket error', { err }));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      // Unconnected and bound: send(buf, port, address) per datagram (see ../shared/bench/README.md).
      s.bind({ port: 0, address: options.interface }, () => {
        s.off('error', reject);
        resolve();
      });
    });
    if (options.interface) s.setMulticastInterface(options.interface);
    s.setMulticastTTL(options.ttl ?? 1);
    s.setMulticastLoopback(options.loopback ?? true);
    try {
      s.setSendBufferSize(want);
    } catch (err) {
      log.warn('could not set send buffer', { want, err });
    }
    log.info('sending to multicast group', { group: options.address, port: options.port, interface: options.interface, io: 'dgram', sendBufferGranted: s.getSendBufferSize(), chunks: chunkCount, size: m.size });
    return {
      send(list, from, to) {
        for (let i = from; i < to; i++) s.send(list[i], options.port, options.address);
        return to - from;
      },
      queuedBytes: () => s.getSendQueueSize(),
      queuedCount: () => s.getSendQueueCount(),
      sendsAtOnce: false,
      close: () => new Promise<void>((resolve) => s.close(() => resolve())),
    };
  }

  /** Token bucket over wire bytes; sleeps in ~1 ms steps (a timer per datagram would be far too coarse). */
  function createPacer(socket: SendSocket, initialBps: number) {
    let bytesPerMs = initialBps / 8 / 1000;
    let tokens = 0;
    let last = performance.now();
    let burst = 0;
    const setRate = (bps: number) => {
      bytesPerMs = bps / 8 / 1000;
      // 60 ms of credit: timers fire late (by ~1 ms idle, by tens of ms on a busy host), and reading status
      // answers and planning repairs hold the event loop for tens of ms during pass 1; credit lost there is
      // rate the transfer never gets back. With 10 ms, N=4 at 2 % on the bed took 6.97-7.20 s instead of
      // 6.51-6.64 s with 20 ms; at N=8 and 2 %, where nine processes share two cores and the sender waits its
      // turn for the CPU, pass 1 took 7.0-7.2 s with 20 ms and 6.3-6.4 s with 60 ms (40 and 100 ms: 6.4-6.7 s).
      // What a late sender makes up goes out at the link's speed, within the socket's queue limit below.
      burst = Math.max(4 * (mtu + ETHERNET_OVERHEAD_BYTES), bytesPerMs * 60);
    };
    setRate(initialBps);
    const queueLimit = 512 * 1024;
    const frameCost = (d: Uint8Array) => d.byteLength + IP_UDP_OVERHEAD_BYTES + ETHERNET_OVERHEAD_BYTES;
    return {
      setRate,
      /** Sends every datagram in `list`, pacing; returns wire bytes. */
      async send(list: Uint8Array[], signal: AbortSignal): Promise<number> {
        let wire = 0;
        let i = 0;
        while (i < list.length) {
          const now = performance.now();
          tokens = Math.min(burst, tokens + (now - last) * bytesPerMs);
          last = now;
          if (socket.queuedBytes() < queueLimit) {
            // As many as the tokens pay for, in one call; the kernel may take fewer (its buffer is full).
            let j = i;
            let cost = 0;
            while (j < list.length && tokens >= cost + frameCost(list[j])) cost += frameCost(list[j++]);
            if (j > i) {
              const went = socket.send(list, i, j);
              for (let k = i; k < i + went; k++) {
                const c = frameCost(list[k]);
                tokens -= c;
                wire += c;
              }
              i += went;
            }
          }
          if (i < list.length) {
            if (signal.aborted) throw new ShoalError(ErrorCode.ABORTED, 'multicast send aborted');
            await sleep(1);
          }
        }
        return wire;
      },
    };
  }

  /**
   * Reads chunks in the given (ascending) order. Neighbouring chunks are read together, up to READ_RUN_BYTES
   * per read (a pass reads the file in 1 MiB reads, not 64 KiB ones; a repair pass that needs most chunks
   * reads through the gaps instead of issuing thousands of small reads), with `readAheadBytes` in flight,
   * into a ring of reused buffers: the caller must be done with a chunk's bytes before asking for the next
   * one. `span(c)` is the plaintext range of chunk c to read (the whole chunk when omitted); what is yielded
   * is [chunk, its bytes from the start of that range, where the range starts in the chunk].
   */
  async function* readChunks(fh: FileHandle, chunks: number[], span?: (c: number) => [number, number]): AsyncGenerator<[number, Buffer, number]> {
    type Run = { start: number; end: number; items: Array<[number, number, number]> };
    const runs: Run[] = [];
    for (const c of chunks) {
      const [from, to] = span?.(c) ?? [0, plainLength(c)];
      const a = c * chunkSize + from;
      const b = c * chunkSize + to;
      const last = runs[runs.length - 1];
      if (last && a >= last.end && a - last.end <= READ_GAP_BYTES && b - last.start <= runBytes) {
        last.end = b;
        last.items.push([c, a, b]);
      } else {
        runs.push({ start: a, end: b, items: [[c, a, b]] });
      }
    }
    const inFlight = Math.max(2, Math.ceil(readAheadBytes / runBytes));
    const inflight: Array<Promise<Buffer>> = [];
    // The ring's buffers outlive this call: pass 1 reads each segment through a call of its own, and 9 MiB of
    // fresh buffers per segment cost the sender ~25,000 page faults per 256 MiB on the bed.
    const ring = rings.pop() ?? [];
    let next = 0;
    const readOne = async (run: Run, slot: number) => {
      const len = run.end - run.start;
      ring[slot] ??= Buffer.allocUnsafe(runBytes);
      const buf = ring[slot].subarray(0, len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, run.start + got);
        if (bytesRead === 0) throw new ShoalError(ErrorCode.HASH_MISMATCH, `file ${options.path} is shorter than its manifest`);
        got += bytesRead;
      }
      return buf;
    };
    try {
      for (let k = 0; k < runs.length; k++) {
        while (next < runs.length && inflight.length < inFlight) {
          // Slot next % (inFlight + 1): the run the caller holds keeps its slot while inFlight others fill.
          const p = readOne(runs[next], next % (inFlight + 1));
          next++;
          p.catch(() => undefined);
          inflight.push(p);
        }
        const buf = await inflight.shift()!;
        const run = runs[k];
        for (const [c, a, b] of run.items) yield [c, buf.subarray(a - run.start, b - run.start), a - c * chunkSize];
      }
    } finally {
      await Promise.allSettled(inflight);
      if (rings.length < 2) rings.push(ring);
    }
  }
  /** Read rings of finished readChunks calls, for the next. */
  const rings: Buffer[][] = [];

  /**
   * A repair that needs a few fragments of a chunk encrypts only their bytes (ChunkSealer.encryptAt) and takes
   * the tag kept from the first seal: at 2 % loss most chunks lack one or two of their ~46 fragments, and
   * resealing each whole chunk cost more than sending the repair. Chunks lacking more go through a whole
   * reseal, which also checks the tag. The plaintext is the one first sealed because the source is checked
   * unchanged before every repair pass (see checkSourceUnchanged).
   */
  const sliceRepair = (c: number, only: Set<number>): boolean => tagKnown[c] === 1 && only.size * 3 <= layout(c).count;
  /** Plaintext range [from, to) covering the listed fragments of chunk c. */
  function fragmentRange(c: number, only: Set<number>): [number, number] {
    const len = plainLength(c);
    const { count } = layout(c);
    let from = len;
    let to = 0;
    for (const f of only) {
      const sp = fragmentSpan(len + SEAL_TAG_BYTES, count, f);
      from = Math.min(from, sp.offset);
      to = Math.max(to, sp.offset + sp.length);
    }
    return [Math.min(from, len), Math.min(Math.max(to, from), len)];
  }
  const scratch = Buffer.allocUnsafe(chunkSize + SEAL_TAG_BYTES);
  /** The sealed bytes of chunk c at its listed fragments (other bytes of the result are meaningless). */
  function sealFragments(c: number, only: Set<number>, plain: Buffer, from: number): Buffer {
    const len = plainLength(c);
    const { count } = layout(c);
    const sealed = scratch.subarray(0, len + SEAL_TAG_BYTES);
    for (const f of only) {
      const sp = fragmentSpan(sealed.length, count, f);
      const end = Math.min(sp.offset + sp.length, len);
      if (sp.offset < end) sealer.encryptAt(c, epoch, sp.offset, plain.subarray(sp.offset - from, end - from)).copy(sealed, sp.offset);
      if (sp.offset + sp.length > len) tags.copy(sealed, len, c * SEAL_TAG_BYTES, (c + 1) * SEAL_TAG_BYTES);
    }
    return sealed;
  }

  function sealChunk(c: number, plain: Buffer): Buffer {
    const known = tagKnown[c] === 1;
    const sealed = sealer.seal(c, epoch, plain, known ? tags.subarray(c * SEAL_TAG_BYTES, (c + 1) * SEAL_TAG_BYTES) : undefined, takeSealed());
    if (!known) {
      sealed.copy(tags, c * SEAL_TAG_BYTES, sealed.length - SEAL_TAG_BYTES);
      tagKnown[c] = 1;
    }
    return sealed;
  }

  /** Datagrams for the listed fragments of a sealed chunk, in one backing buffer (from the pool: hand the list
   * to `reuse` once sent). */
  function datagrams(c: number, sealed: Buffer, only: Set<number> | undefined): Uint8Array[] {
    const { count, size } = layout(c);
    const slot = DATAGRAM_HEADER_BYTES + size;
    const n = only ? only.size : count;
    const backing = takeDatagrams(slot * n);
    const out: Uint8Array[] = [];
    let at = 0;
    for (let f = 0; f < count; f++) {
      if (only && !only.has(f)) continue;
      const span = fragmentSpan(sealed.length, count, f);
      writeHeader(backing, at, DatagramKind.DATA, tid, c, epoch, f, count, span.length);
      sealed.copy(backing, at + DATAGRAM_HEADER_BYTES, span.offset, span.offset + span.length);
      out.push(backing.subarray(at, at + DATAGRAM_HEADER_BYTES + span.length));
      at += slot;
    }
    return out;
  }

  /** `n` new parity fragments of a sealed chunk as datagrams, in one backing buffer (as datagrams()). */
  let parityScratch = Buffer.alloc(0);
  function parityDatagrams(c: number, sealed: Buffer, n: number): Uint8Array[] {
    const { count, size } = layout(c);
    const slot = DATAGRAM_HEADER_BYTES + size;
    if (parityScratch.length < n * size) parityScratch = Buffer.allocUnsafeSlow(n * size);
    const parity = parityScratch.subarray(0, n * size);
    encodeParity(sealed, count, nextParity[c], n, parity);
    const backing = takeDatagrams(slot * n);
    const out: Uint8Array[] = [];
    for (let j = 0; j < n; j++) {
      writeHeader(backing, j * slot, DatagramKind.PARITY, tid, c, epoch, nextParity[c] + j, count, size);
      parity.copy(backing, j * slot + DATAGRAM_HEADER_BYTES, j * size, (j + 1) * size);
      out.push(backing.subarray(j * slot, (j + 1) * slot));
    }
    nextParity[c] += n;
    return out;
  }

  /** Throws HASH_MISMATCH when the open source file was written since the transfer began (its change time
   * moved): resending parts of it under the same nonces would then encrypt other bytes with the same key
   * stream. */
  async function checkSourceUnchanged(fh: FileHandle, first: BigIntStats): Promise<void> {
    const now = await fh.stat({ bigint: true });
    if (now.size !== first.size || now.mtimeNs !== first.mtimeNs || now.ctimeNs !== first.ctimeNs) {
      throw new ShoalError(ErrorCode.HASH_MISMATCH, `file ${options.path} changed during the transfer`);
    }
  }

  return {
    async run(signal) {
      const fh = await open(options.path, 'r');
      let socket: SendSocket | null = null;
      try {
        const st = await fh.stat({ bigint: true });
        if (st.size !== BigInt(m.size)) throw new ShoalError(ErrorCode.HASH_MISMATCH, `file is ${st.size} bytes, manifest says ${m.size}`);
        socket = await openSocket();
        const sock = socket;
        let rate = ceiling;
        /** A receiver has said it could not keep up: climb back slowly from then on. */
        let overloaded = false;
        const pacer = createPacer(sock, rate);
        const passes: PassReport[] = [];
        let total = { datagrams: 0, wireBytes: 0 };
        let incomplete: string[] = [];
        const unreached = new Set<string>();
        const highLoss = new Map<string, number>();
        let complete = false;
        // Every batch of datagrams (a segment of pass 1, a repair sent during it, a later pass) ends with an
        // end-of-batch marker numbered `seq`; statuses are asked for as of a marker. closedBy[c] is the marker
        // that followed the latest send of chunk c: a receiver that saw that marker has had its chance at c.
        let seq = 0;
        const closedBy = new Uint32Array(chunkCount);
        const none = new Map<number, Set<number>>();
        const noParity = new Map<number, number>();
        type Work = { chunks: number[]; fragments: Map<number, Set<number>>; parity: Map<number, number> };
        let pendingWork: Work = { chunks: [], fragments: none, parity: noParity };

        /** DATA and PARITY datagrams sent since the last marker (the marker carries the count). */
        let sinceMarker = 0;
        /** Sends the listed chunks (whole, their listed fragments, or parity fragments), then, with `mark`, an
         * end-of-batch marker. */
        async function sendBatch({ chunks, fragments, parity }: Work, mark: boolean): Promise<{ sent: number; wire: number }> {
          let sent = 0;
          let wire = 0;
          const emit = async (c: number, sealed: Buffer) => {
            const p = parity.get(c);
            const list = p ? parityDatagrams(c, sealed, p) : datagrams(c, sealed, fragments.get(c));
            wire += await pacer.send(list, signal);
            sent += list.length;
            if (sock.sendsAtOnce) reuse(list[0]);
          };
          // Recently sealed chunks are resent from memory: no read, no encryption.
          const toRead: number[] = [];
          for (const c of chunks) {
            const sealed = recent.get(c);
            if (!sealed) { toRead.push(c); continue; }
            if (signal.aborted) throw new ShoalError(ErrorCode.ABORTED, 'multicast send aborted');
            await emit(c, sealed);
          }
          // Chunks resent from just the bytes of their missing fragments, with the range those cover.
          const slices = new Map<number, [number, number]>();
          for (const [c, only] of fragments) if (!parity.has(c) && sliceRepair(c, only)) slices.set(c, fragmentRange(c, only));
          for await (const [c, plain, from] of readChunks(fh, toRead, (c) => slices.get(c) ?? [0, plainLength(c)])) {
            if (signal.aborted) throw new ShoalError(ErrorCode.ABORTED, 'multicast send aborted');
            const only = fragments.get(c);
            if (only && slices.has(c)) {
              await emit(c, sealFragments(c, only, plain, from));
            } else {
              const sealed = sealChunk(c, plain);
              remember(c, sealed);
              await emit(c, sealed);
            }
          }
          // The next marker closes these chunks, whether it follows now or after later batches.
          for (const c of chunks) closedBy[c] = seq + 1;
          sinceMarker += sent;
          if (mark) {
            seq++;
            const marker = encodeDatagram({ kind: DatagramKind.PASS_END, transferId: tid, pass: seq, sent: sinceMarker });
            sinceMarker = 0;
            for (let k = 0; k < 3; k++) {
              wire += await pacer.send([marker], signal);
              await sleep(1, undefined, { signal }).catch(() => undefined);
            }
          }
          return { sent, wire };
        }

        /** Changes the rate on what receivers multicast reaches say (a receiver that lost most of a batch says
         * nothing about congestion). */
        function adapt(statuses: ReceiverStatus[]): void {
          const reached = statuses.filter((s) => !unreached.has(s.receiverId) && s.lossRate < unreachedLoss);
          const worst = Math.max(0, ...reached.map((s) => s.lossRate));
          // A receiver that drops what arrives because its disk or memory is full needs a slower sender
          // whatever the link loses: every such datagram is sent again, to everyone.
          const overload = Math.max(0, ...reached.map((s) => s.overloadRate ?? 0));
          if (overload > backoffOverload) {
            rate = Math.max(floor, rate * Math.max(0.5, Math.min(0.9, 1 - 2 * overload)));
            overloaded = true;
          } else if (worst > backoffLoss) {
            rate = Math.max(floor, rate * Math.max(0.5, 1 - 2 * worst));
          } else if (worst < backoffLoss / 2 && overload <= backoffOverload / 2) {
            rate = Math.min(ceiling, rate * (overloaded ? 1.05 : 1.25));
          }
          pacer.setRate(rate);
        }

        /** The union of what reached receivers lack among chunks closed by marker `upTo` or earlier; parity
         * fragments for chunks where the neediest receiver lacks fewer than the union. */
        function repairsOf(statuses: ReceiverStatus[], upTo: number): Work {
          const plan = planRepair(statuses.filter((s) => !unreached.has(s.receiverId)), chunkCount, (c) => layout(c).count);
          const due = (c: number) => closedBy[c] > 0 && closedBy[c] <= upTo;
          const chunks = [...new Set([...plan.whole, ...plan.fragments.keys()])].filter(due).sort((a, b) => a - b);
          const parity = new Map<number, number>();
          if (useParity) {
            for (const [c, only] of plan.fragments) {
              const n = plan.need.get(c) ?? only.size;
              if (n < only.size && due(c) && nextParity[c] + n <= maxParity(layout(c).count)) parity.set(c, n);
            }
          }
          return { chunks, fragments: plan.fragments, parity };
        }

        // Pass 1 goes out in segments of about 0.4 s. After each, receivers are asked (in the background, one
        // request at a time) what they lack so far, and that is resent as soon as the answer is in, between
        // the slices the next segment goes out in: chunks wait for their missing fragments about half a second
        // instead of a whole pass, so receivers keep them in memory and their running whole-file hash keeps up,
        // and the rate adapts within the pass. (Repairs held back to the end of the next segment came after
        // 0.8 s, more than the 0.67 s of data a receiver holds in 32 MiB, and a fifth of the chunks they
        // completed had been spilled to disk by then.)
        const segment = Math.max(32, Math.round((ceiling / 8) * 0.4 / chunkSize));
        const slice = Math.max(8, Math.ceil(segment / 8));
        for (let pass = 1; pass <= maxPasses; pass++) {
          const t0 = performance.now();
          let sent = 0;
          let wire = 0;
          /** sendBatch, counted into this pass's figures. */
          const send = async (work: Work, mark: boolean): Promise<void> => {
            const r = await sendBatch(work, mark);
            sent += r.sent;
            wire += r.wire;
          };
          const run = (at: number, end: number): Work => ({ chunks: Array.from({ length: end - at }, (_, i) => at + i), fragments: none, parity: noParity });
          if (pass === 1) {
            let asking: { upTo: number; answer: ReceiverStatus[] | null; done: Promise<void> } | null = null;
            // Asking costs every receiver a status and the link a marker: while nobody lacks anything, ask
            // after every 2nd, 4th, then 8th segment; after every segment again once something is missing.
            let askEvery = 1;
            let sinceAsked = 0;
            /** Resends what the answered request says is lacking (nothing before the answer is in). */
            const repairAnswered = async (mark: boolean): Promise<void> => {
              if (!asking?.answer) return;
              const got = { upTo: asking.upTo, statuses: asking.answer };
              asking = null;
              adapt(got.statuses);
              const fix = repairsOf(got.statuses, got.upTo);
              askEvery = fix.chunks.length > 0 ? 1 : Math.min(8, askEvery * 2);
              if (fix.chunks.length > 0) {
                await checkSourceUnchanged(fh, st);
                await send(fix, mark);
              }
            };
            for (let from = 0; from < chunkCount; from += segment) {
              const to = Math.min(chunkCount, from + segment);
              const last = to >= chunkCount;
              sinceAsked++;
              let at = from;
              for (; to - at > slice; at += slice) {
                await send(run(at, at + slice), false);
                await repairAnswered(false);
              }
              // Decided before the last slice (the answer to the previous request may have come in during this
              // segment): the segment's marker follows that slice, before any repair, so the loss receivers
              // report as of a marker covers a whole segment, not a small repair batch.
              const ask = !last && !asking && sinceAsked >= askEvery;
              await send(run(at, to), ask || last);
              if (ask) {
                const a: { upTo: number; answer: ReceiverStatus[] | null; done: Promise<void> } = { upTo: seq, answer: null, done: Promise.resolve() };
                a.done = deps.collectStatus(seq, signal, pass).then((statuses) => { a.answer = statuses; }, () => { a.answer = []; });
                asking = a;
                sinceAsked = 0;
              } else {
                await repairAnswered(last);
              }
            }
            // One status request at a time: let the last one finish before the end-of-pass request.
            await asking?.done;
          } else {
            await checkSourceUnchanged(fh, st);
            await send(pendingWork, true);
          }
          // Let the socket queue drain before asking: a status taken while datagrams are queued asks for them again.
          for (let k = 0; k < 2000 && sock.queuedCount() > 0; k++) await sleep(1);
          const ms = performance.now() - t0;
          await sleep(options.passGraceMs ?? 5, undefined, { signal }).catch(() => undefined);
          if (signal.aborted) throw new ShoalError(ErrorCode.ABORTED, 'multicast send aborted');
          const statuses = await deps.collectStatus(seq, signal, pass);
          const report: PassReport = { pass, chunks: pass === 1 ? chunkCount : pendingWork.chunks.length, datagrams: sent, wireBytes: wire, rateBps: rate, ms: Math.round(ms), missing: {}, loss: {} };
          for (const s of statuses) {
            report.missing[s.receiverId] = missingChunkCount(s);
            report.loss[s.receiverId] = s.lossRate;
          }
          passes.push(report);
          total = { datagrams: total.datagrams + sent, wireBytes: total.wireBytes + wire };
          incomplete = statuses.filter((s) => missingChunkCount(s) > 0).map((s) => s.receiverId);
          for (const s of statuses) {
            // Heard nothing at all, not even an end-of-pass marker (receivers report loss 1 until they see one);
            // a receiver whose chunks were all spoiled by forged datagrams still saw the marker.
            const deaf = s.received === 0 && s.lossRate >= 0.99 && chunkCount > 0 && missingChunkCount(s) >= chunkCount;
            // One lossy pass is not enough: a receiver restarted mid-pass reports most of that pass as lost,
            // and is back to normal in the next one.
            const lossy = s.lossRate >= unreachedLoss ? (highLoss.get(s.receiverId) ?? 0) + 1 : 0;
            highLoss.set(s.receiverId, lossy);
            if ((deaf || lossy >= 2) && missingChunkCount(s) > 0) unreached.add(s.receiverId);
          }
          const reached = statuses.filter((s) => !unreached.has(s.receiverId));
          log.info('pass done', { pass, chunks: report.chunks, datagrams: sent, wireBytes: wire, rateBps: Math.round(rate), ms: report.ms, incomplete: incomplete.length, receivers: statuses.length });
          if (incomplete.length === 0) {
            complete = true;
            break;
          }
          if (reached.every((s) => missingChunkCount(s) === 0)) {
            log.info('only receivers not reached by multicast lack data; they finish through the swarm', { unreached: [...unreached] });
            break;
          }
          adapt(reached);
          pendingWork = repairsOf(reached, seq);
        }
        return { passes, complete, incomplete: complete ? [] : incomplete, unreached: complete ? [] : [...unreached], finalRateBps: rate, ...total };
      } finally {
        recent.clear();
        if (socket) await socket.close();
        await fh.close();
      }
    },
  };
}
