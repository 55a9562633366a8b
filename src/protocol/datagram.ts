/**
 * Pure encoder/decoder of multicast datagrams (layout in datagram-types.ts). The decoder is bounded: it checks
 * every length against the buffer and the limits before looking at the payload, allocates nothing from a
 * length field, and throws ShoalError(MALFORMED_DATAGRAM) on anything it does not accept.
 */
import { ErrorCode, ShoalError } from './errors.ts';
import {
  DATAGRAM_HEADER_BYTES,
  DATAGRAM_MAGIC,
  DATAGRAM_VERSION,
  DatagramKind,
  MAX_DATAGRAM_BYTES,
  MAX_FRAGMENTS,
  MAX_PARITY_INDEX,
  PASS_END_PAYLOAD_BYTES,
  TRANSFER_ID_BYTES,
  type DataDatagram,
  type Datagram,
  type PassEndDatagram,
} from './datagram-types.ts';

function malformed(reason: string): never {
  throw new ShoalError(ErrorCode.MALFORMED_DATAGRAM, `malformed datagram: ${reason}`, { reason });
}

/** How a sealed chunk of `sealedLength` bytes is cut: `count` fragments of `size` bytes (the last may be shorter). */
export function fragmentLayout(sealedLength: number, maxPayload: number): { count: number; size: number } {
  if (!Number.isInteger(sealedLength) || sealedLength < 1) throw new ShoalError(ErrorCode.BAD_REQUEST, 'sealed length must be a positive integer');
  if (!Number.isInteger(maxPayload) || maxPayload < 1) throw new ShoalError(ErrorCode.BAD_REQUEST, 'fragment payload budget must be positive');
  const count = Math.ceil(sealedLength / maxPayload);
  if (count > MAX_FRAGMENTS) throw new ShoalError(ErrorCode.BAD_REQUEST, `a chunk of ${sealedLength} bytes needs ${count} fragments (max ${MAX_FRAGMENTS})`);
  return { count, size: Math.ceil(sealedLength / count) };
}

/** Byte offset and length of fragment `index` of `count` within a sealed chunk of `sealedLength` bytes. */
export function fragmentSpan(sealedLength: number, count: number, index: number): { offset: number; length: number } {
  const size = Math.ceil(sealedLength / count);
  const offset = index * size;
  return { offset, length: Math.max(0, Math.min(size, sealedLength - offset)) };
}

function checkTransferId(id: Uint8Array): void {
  if (id.byteLength !== TRANSFER_ID_BYTES) throw new ShoalError(ErrorCode.BAD_REQUEST, `transfer id must be ${TRANSFER_ID_BYTES} bytes`);
}

/**
 * Writes a header at `buf[at..at+24)` (hot path of the sender: one buffer holds every fragment of a chunk).
 * `chunk` is the pass number for PASS_END. No validation beyond what the caller already guarantees.
 */
export function writeHeader(
  buf: Uint8Array,
  at: number,
  kind: DatagramKind,
  transferId: Uint8Array,
  chunk: number,
  epoch: number,
  fragment: number,
  fragments: number,
  payloadLength: number,
): void {
  const v = new DataView(buf.buffer, buf.byteOffset + at, DATAGRAM_HEADER_BYTES);
  v.setUint16(0, DATAGRAM_MAGIC);
  v.setUint8(2, DATAGRAM_VERSION);
  v.setUint8(3, kind);
  buf.set(transferId, at + 4);
  v.setUint32(12, chunk);
  v.setUint16(16, epoch);
  v.setUint16(18, fragment);
  v.setUint16(20, fragments);
  v.setUint16(22, payloadLength);
}

/** Encodes one datagram into a fresh buffer. Throws BAD_REQUEST on fields out of range. */
export function encodeDatagram(d: Datagram): Uint8Array {
  checkTransferId(d.transferId);
  const u32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
  const u16 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff;
  switch (d.kind) {
    case DatagramKind.DATA:
    case DatagramKind.PARITY: {
      if (!u32(d.chunk) || !u16(d.epoch)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'chunk or epoch out of range');
      if (!Number.isInteger(d.fragments) || d.fragments < 1 || d.fragments > MAX_FRAGMENTS) throw new ShoalError(ErrorCode.BAD_REQUEST, 'fragment count out of range');
      const indexLimit = d.kind === DatagramKind.DATA ? d.fragments : MAX_PARITY_INDEX + 1;
      if (!u16(d.fragment) || d.fragment >= indexLimit) throw new ShoalError(ErrorCode.BAD_REQUEST, 'fragment index out of range');
      if (d.payload.byteLength < 1 || d.payload.byteLength > MAX_DATAGRAM_BYTES - DATAGRAM_HEADER_BYTES) throw new ShoalError(ErrorCode.BAD_REQUEST, 'payload length out of range');
      const buf = new Uint8Array(DATAGRAM_HEADER_BYTES + d.payload.byteLength);
      writeHeader(buf, 0, d.kind, d.transferId, d.chunk, d.epoch, d.fragment, d.fragments, d.payload.byteLength);
      buf.set(d.payload, DATAGRAM_HEADER_BYTES);
      return buf;
    }
    case DatagramKind.PASS_END: {
      if (!u32(d.pass) || !u32(d.sent)) throw new ShoalError(ErrorCode.BAD_REQUEST, 'pass or count out of range');
      const buf = new Uint8Array(DATAGRAM_HEADER_BYTES + PASS_END_PAYLOAD_BYTES);
      writeHeader(buf, 0, d.kind, d.transferId, d.pass, 0, 0, 1, PASS_END_PAYLOAD_BYTES);
      new DataView(buf.buffer).setUint32(DATAGRAM_HEADER_BYTES, d.sent);
      return buf;
    }
    default: {
      const never: never = d;
      throw new ShoalError(ErrorCode.BAD_REQUEST, `unknown datagram kind ${(never as Datagram).kind}`);
    }
  }
}

/** The fields of one datagram as readDatagramAt leaves them (one object, reused from datagram to datagram). */
export interface DatagramFields {
  kind: DatagramKind;
  /** Chunk index (DATA, PARITY) or pass number (PASS_END). */
  chunk: number;
  epoch: number;
  fragment: number;
  fragments: number;
  /** Where the payload starts in the buffer, and its length. */
  payloadStart: number;
  payloadLength: number;
  /** PASS_END: DATA and PARITY datagrams the pass sent. */
  sent: number;
}

/** A DatagramFields to pass to readDatagramAt. */
export function datagramFields(): DatagramFields {
  return { kind: DatagramKind.DATA, chunk: 0, epoch: 0, fragment: 0, fragments: 0, payloadStart: 0, payloadLength: 0, sent: 0 };
}

/**
 * Checks the datagram at bytes [at, at + length) of `view` and reads its fields into `out` without allocating
 * (the receiver's path: thousands of datagrams per batch). The transfer id is at [at + 4, at + 12). Throws
 * MALFORMED_DATAGRAM on anything decodeDatagram refuses: both are this one check.
 */
export function readDatagramAt(view: DataView, at: number, length: number, out: DatagramFields): void {
  if (length < DATAGRAM_HEADER_BYTES) malformed(`truncated header (${length} bytes)`);
  if (length > MAX_DATAGRAM_BYTES) malformed(`longer than ${MAX_DATAGRAM_BYTES} bytes`);
  if (view.getUint16(at) !== DATAGRAM_MAGIC) malformed('bad magic');
  const version = view.getUint8(at + 2);
  if (version !== DATAGRAM_VERSION) malformed(`unsupported version ${version}`);
  const kind = view.getUint8(at + 3);
  const chunk = view.getUint32(at + 12);
  const epoch = view.getUint16(at + 16);
  const fragment = view.getUint16(at + 18);
  const fragments = view.getUint16(at + 20);
  const payloadLength = view.getUint16(at + 22);
  if (payloadLength !== length - DATAGRAM_HEADER_BYTES) malformed(`payload length ${payloadLength} does not match ${length - DATAGRAM_HEADER_BYTES} bytes present`);
  if (kind === DatagramKind.DATA) {
    if (fragments < 1 || fragments > MAX_FRAGMENTS) malformed(`fragment count ${fragments} out of range`);
    if (fragment >= fragments) malformed(`fragment index ${fragment} not below count ${fragments}`);
    if (payloadLength < 1) malformed('empty payload');
    out.sent = 0;
  } else if (kind === DatagramKind.PARITY) {
    if (fragments < 1 || fragments > MAX_FRAGMENTS) malformed(`fragment count ${fragments} out of range`);
    if (fragment > MAX_PARITY_INDEX) malformed(`parity index ${fragment} out of range`);
    if (payloadLength < 1) malformed('empty payload');
    out.sent = 0;
  } else if (kind === DatagramKind.PASS_END) {
    if (payloadLength !== PASS_END_PAYLOAD_BYTES || epoch !== 0 || fragment !== 0 || fragments !== 1) malformed('bad pass-end fields');
    out.sent = view.getUint32(at + DATAGRAM_HEADER_BYTES);
  } else {
    malformed(`unknown kind ${kind}`);
  }
  out.kind = kind as DatagramKind;
  out.chunk = chunk;
  out.epoch = epoch;
  out.fragment = fragment;
  out.fragments = fragments;
  out.payloadStart = at + DATAGRAM_HEADER_BYTES;
  out.payloadLength = payloadLength;
}

/** Decodes one datagram. Payload and transfer id are views into `bytes`. Throws MALFORMED_DATAGRAM. */
export function decodeDatagram(bytes: Uint8Array): Datagram {
  const f = datagramFields();
  readDatagramAt(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.byteLength, f);
  const transferId = bytes.subarray(4, 4 + TRANSFER_ID_BYTES);
  if (f.kind === DatagramKind.DATA || f.kind === DatagramKind.PARITY) {
    const d: DataDatagram = { kind: f.kind, transferId, chunk: f.chunk, epoch: f.epoch, fragment: f.fragment, fragments: f.fragments, payload: bytes.subarray(DATAGRAM_HEADER_BYTES) };
    return d;
  }
  const d: PassEndDatagram = { kind: DatagramKind.PASS_END, transferId, pass: f.chunk, sent: f.sent };
  return d;
}
