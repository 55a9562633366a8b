import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDatagram, encodeDatagram, fragmentLayout, fragmentSpan } from './datagram.ts';
import { DatagramKind, MAX_FRAGMENTS, MAX_PARITY_INDEX, type DataDatagram } from './datagram-types.ts';
import { isShoalError, ErrorCode } from './errors.ts';

const tid = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const malformed = (fn: () => unknown) => assert.throws(fn, (e) => isShoalError(e, ErrorCode.MALFORMED_DATAGRAM));

describe('datagram codec', () => {
  it('encodes a DATA fragment to the documented bytes', () => {
    const bytes = encodeDatagram({ kind: DatagramKind.DATA, transferId: tid, chunk: 0x01020304, epoch: 7, fragment: 2, fragments: 46, payload: Uint8Array.from([0xaa, 0xbb, 0xcc]) });
    assert.equal(hex(bytes), '5348' + '01' + '01' + '0102030405060708' + '01020304' + '0007' + '0002' + '002e' + '0003' + 'aabbcc');
    const d = decodeDatagram(bytes) as DataDatagram;
    assert.equal(d.kind, DatagramKind.DATA);
    assert.deepEqual([d.chunk, d.epoch, d.fragment, d.fragments], [0x01020304, 7, 2, 46]);
    assert.equal(hex(d.transferId), '0102030405060708');
    assert.equal(hex(d.payload), 'aabbcc');
  });

  it('encodes a PASS_END marker to the documented bytes', () => {
    const bytes = encodeDatagram({ kind: DatagramKind.PASS_END, transferId: tid, pass: 3, sent: 188_000 });
    assert.equal(hex(bytes), '5348' + '01' + '02' + '0102030405060708' + '00000003' + '0000' + '0000' + '0001' + '0004' + '0002de60');
    assert.deepEqual(decodeDatagram(bytes), { kind: DatagramKind.PASS_END, transferId: bytes.subarray(4, 12), pass: 3, sent: 188_000 });
  });

  it('round-trips a PARITY datagram and bounds its index by the code, not by the fragment count', () => {
    const bytes = encodeDatagram({ kind: DatagramKind.PARITY, transferId: tid, chunk: 9, epoch: 1, fragment: 200, fragments: 46, payload: Uint8Array.from([1, 2]) });
    assert.equal(bytes[3], DatagramKind.PARITY);
    const d = decodeDatagram(bytes) as DataDatagram;
    assert.deepEqual([d.kind, d.chunk, d.epoch, d.fragment, d.fragments, [...d.payload]], [DatagramKind.PARITY, 9, 1, 200, 46, [1, 2]]);
    new DataView(bytes.buffer).setUint16(18, MAX_PARITY_INDEX + 1);
    malformed(() => decodeDatagram(bytes));
    assert.throws(() => encodeDatagram({ kind: DatagramKind.PARITY, transferId: tid, chunk: 9, epoch: 1, fragment: MAX_PARITY_INDEX + 1, fragments: 46, payload: Uint8Array.from([1]) }));
  });

  const good = () => encodeDatagram({ kind: DatagramKind.DATA, transferId: tid, chunk: 1, epoch: 0, fragment: 0, fragments: 2, payload: new Uint8Array(10) });

  it('rejects a truncated header', () => {
    const b = good();
    for (const n of [0, 1, 12, 23]) malformed(() => decodeDatagram(b.subarray(0, n)));
  });
  it('rejects a payload length that does not match the bytes present', () => {
    malformed(() => decodeDatagram(good().subarray(0, 30)));
    const longer = new Uint8Array(good().length + 1);
    longer.set(good());
    malformed(() => decodeDatagram(longer));
    const b = good();
    b[22] = 0xff; b[23] = 0xff;
    malformed(() => decodeDatagram(b));
  });
  it('rejects a wrong magic, version or kind', () => {
    for (const [at, value] of [[0, 0], [2, 2], [3, 0], [3, 9]]) {
      const b = good();
      b[at] = value;
      malformed(() => decodeDatagram(b));
    }
  });
  it('rejects a fragment index not below the count, a zero count and a count above the limit', () => {
    const set = (idx: number, count: number) => {
      const b = good();
      new DataView(b.buffer).setUint16(18, idx);
      new DataView(b.buffer).setUint16(20, count);
      return b;
    };
    malformed(() => decodeDatagram(set(2, 2)));
    malformed(() => decodeDatagram(set(0, 0)));
    malformed(() => decodeDatagram(set(0, MAX_FRAGMENTS + 1)));
    assert.equal((decodeDatagram(set(MAX_FRAGMENTS - 1, MAX_FRAGMENTS)) as DataDatagram).fragment, MAX_FRAGMENTS - 1);
  });
  it('rejects an empty DATA payload and a PASS_END with extra fields', () => {
    const b = good().subarray(0, 24).slice();
    b[22] = 0; b[23] = 0;
    malformed(() => decodeDatagram(b));
    const p = encodeDatagram({ kind: DatagramKind.PASS_END, transferId: tid, pass: 1, sent: 1 });
    p[19] = 1;
    malformed(() => decodeDatagram(p));
  });
  it('refuses to encode fields out of range', () => {
    assert.throws(() => encodeDatagram({ kind: DatagramKind.DATA, transferId: tid, chunk: 1, epoch: 0, fragment: 2, fragments: 2, payload: new Uint8Array(1) }));
    assert.throws(() => encodeDatagram({ kind: DatagramKind.DATA, transferId: tid.subarray(1), chunk: 1, epoch: 0, fragment: 0, fragments: 2, payload: new Uint8Array(1) }));
  });
  it('survives random bytes without throwing anything but MALFORMED_DATAGRAM', () => {
    let ok = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = i % 2 ? good() : new Uint8Array(Math.floor(Math.random() * 80));
      for (let k = 0; k < 3; k++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
      try { decodeDatagram(b); ok++; } catch (e) { assert.ok(isShoalError(e, ErrorCode.MALFORMED_DATAGRAM)); }
    }
    assert.ok(ok > 0);
  });
});

describe('fragment layout', () => {
  it('cuts a 64 KiB sealed chunk for a 1500-byte MTU into equal fragments', () => {
    const sealed = 65536 + 16;
    const { count, size } = fragmentLayout(sealed, 1500 - 28 - 24);
    assert.equal(count, 46);
    assert.ok(size <= 1448);
    let total = 0;
    for (let i = 0; i < count; i++) total += fragmentSpan(sealed, count, i).length;
    assert.equal(total, sealed);
    assert.equal(fragmentSpan(sealed, count, count - 1).offset + fragmentSpan(sealed, count, count - 1).length, sealed);
  });
  it('refuses a chunk that would need more fragments than the limit', () => {
    assert.throws(() => fragmentLayout(MAX_FRAGMENTS * 10 + 1, 10));
  });
});
