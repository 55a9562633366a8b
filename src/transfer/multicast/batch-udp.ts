/**
 * Batched UDP I/O for multicast (build/shoal_udp.node, built from native/shoal_udp.c at install): one
 * recvmmsg/sendmmsg system call and one call into JavaScript per batch of up to 256 datagrams, where
 * node:dgram makes one of each per datagram (measured on the bed: see bench/multicast/README.md). Linux
 * only; `loadBatchUdp()` returns null where the module is not built or SHOAL_MULTICAST_IO=dgram, and the
 * sender and receiver then use node:dgram.
 */
import { loadNativeModule } from '../../native-module.ts';

/** Largest datagram a batch receiver takes whole (a 9216-byte jumbo frame's payload fits); longer ones are
 * truncated by the kernel and reported with length -1. The sender's MTU is capped to match. */
export const BATCH_SLOT_BYTES = 9216;

/** While datagrams flow, a batch receiver reads its socket every this many ms rather than on every wake-up
 * (native/shoal_udp.c, on_tick). At N=8 on the bed this took receiver CPU from 1.73 to 1.1 s per copy. */
export const BATCH_TICK_MS = 2;

/** A batch receiver's buffer: 128 slots of 64 KiB, so that with receive offload (UDP_GRO) each slot can take
 * one coalesced message of up to 64 datagrams; without it, 256 datagrams of BATCH_SLOT_BYTES per read. Pages
 * are touched only as far as messages reach into their slots. */
const RECEIVE_SLOT_BYTES = 65536;
const RECEIVE_BUFFER_BYTES = 128 * RECEIVE_SLOT_BYTES;
/** Datagrams one read can hand over: 128 coalesced messages of at most 64 datagrams each. */
const RECEIVE_MAX_DATAGRAMS = 128 * 64;

interface NativeModule {
  openReceiver(group: string, port: number, iface: string | null, rcvbuf: number, data: Buffer, starts: Int32Array, lens: Int32Array, slot: number, onBatch: (count: number) => void, tickMs: number, gro: boolean): [unknown, number, number];
  closeReceiver(handle: unknown): void;
  openSender(iface: string | null, ttl: number, loopback: boolean, sndbuf: number): [unknown, number, number];
  sendBatch(handle: unknown, list: Uint8Array[], from: number, to: number, group: string, port: number): number;
  closeSender(handle: unknown): void;
}

export interface BatchReceiverSocket {
  /** SO_RCVBUF granted by the kernel, bytes. */
  readonly recvBufferBytes: number;
  /** Whether the socket takes coalesced datagrams (UDP_GRO): they then arrive in bursts of one syscall and one
   * copy where the network card or veth coalesces them. SHOAL_MULTICAST_GRO=off turns it off. */
  readonly receiveOffload: boolean;
  /** Datagrams that arrived coalesced behind another one so far (0 where the link does not coalesce). */
  coalesced(): number;
  close(): void;
}

export interface BatchSenderSocket {
  readonly sendBufferBytes: number;
  /** Sends list[from..to) without blocking; returns how many the kernel took (fewer: its buffer is full). */
  send(list: Uint8Array[], from: number, to: number): number;
  close(): void;
}

export interface BatchUdp {
  /**
   * Joins `group` on `iface` and calls `onDatagram(buf, start, length)` for every datagram (length -1: longer
   * than BATCH_SLOT_BYTES). `buf` is reused for the next batch: copy what must outlive the call.
   */
  openReceiver(o: { group: string; port: number; iface?: string; recvBufferBytes: number; tickMs?: number; onDatagram: (buf: Buffer, start: number, length: number) => void; onError: (err: Error) => void }): BatchReceiverSocket;
  openSender(o: { group: string; port: number; iface?: string; ttl: number; loopback: boolean; sendBufferBytes: number }): BatchSenderSocket;
}

let cached: BatchUdp | null | undefined;

/** The batch I/O module, or null where it is not available (then use node:dgram). */
export function loadBatchUdp(): BatchUdp | null {
  if (cached !== undefined) return cached;
  cached = null;
  const mod = loadNativeModule<NativeModule>('shoal_udp', process.platform !== 'linux' || process.env.SHOAL_MULTICAST_IO === 'dgram');
  if (!mod) return cached;
  cached = {
    openReceiver(o) {
      const data = Buffer.allocUnsafe(RECEIVE_BUFFER_BYTES);
      const starts = new Int32Array(RECEIVE_MAX_DATAGRAMS);
      let coalesced = 0;
      const lens = new Int32Array(RECEIVE_MAX_DATAGRAMS);
      const [handle, granted, offload] = mod.openReceiver(o.group, o.port, o.iface ?? null, o.recvBufferBytes, data, starts, lens, BATCH_SLOT_BYTES, (count) => {
        if (count < 0) {
          o.onError(new Error(`receive failed (errno ${-count})`));
          return;
        }
        for (let i = 0; i < count; i++) {
          if (starts[i] % RECEIVE_SLOT_BYTES !== 0) coalesced++;
          o.onDatagram(data, starts[i], lens[i]);
        }
      }, o.tickMs ?? BATCH_TICK_MS, process.env.SHOAL_MULTICAST_GRO !== 'off');
      let closed = false;
      return {
        recvBufferBytes: granted,
        receiveOffload: offload === 1,
        coalesced: () => (offload === 1 ? coalesced : 0),
        close() {
          if (closed) return;
          closed = true;
          mod.closeReceiver(handle);
        },
      };
    },
    openSender(o) {
      const [handle, granted] = mod.openSender(o.iface ?? null, o.ttl, o.loopback, o.sendBufferBytes);
      let closed = false;
      return {
        sendBufferBytes: granted,
        send: (list, from, to) => mod.sendBatch(handle, list, from, to, o.group, o.port),
        close() {
          if (closed) return;
          closed = true;
          mod.closeSender(handle);
        },
      };
    },
  };
  return cached;
}
