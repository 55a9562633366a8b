import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createChunkSealer, nativeGcmLoaded, wireTransferId, SEAL_TAG_BYTES } from './chunk-seal.ts';
import { ErrorCode, isShoalError } from '../protocol/errors.ts';

const key = randomBytes(32);
const tid = wireTransferId('transfer-1');
const authFail = (e: unknown) => isShoalError(e, ErrorCode.HASH_MISMATCH);
const freshSeal = (s: ReturnType<typeof createChunkSealer>, p: Buffer) => Buffer.from(s.seal(6, 0, p));

describe('chunk sealing', () => {
  it('round-trips a chunk and adds a 16-byte tag', () => {
    const s = createChunkSealer(key, tid);
    const p = randomBytes(65536);
    const sealed = s.seal(5, 0, p);
    assert.equal(sealed.length, p.length + SEAL_TAG_BYTES);
    assert.ok(!sealed.subarray(0, 64).equals(p.subarray(0, 64)));
    assert.ok(s.open(5, 0, sealed).equals(p));
  });
  it('reseals the same chunk to the same bytes, so fragments of two passes combine', () => {
    const s = createChunkSealer(key, tid);
    const p = randomBytes(1000);
    assert.ok(s.seal(9, 0, p).equals(s.seal(9, 0, p)));
  });
  it('encrypts any slice of a chunk to the bytes the whole seal gives there', () => {
    const s = createChunkSealer(key, tid);
    const p = randomBytes(65536);
    const sealed = s.seal(11, 3, p);
    for (const [off, len] of [[0, 1448], [1448, 1448], [17, 1], [65536 - 1000, 1000], [4001, 20000], [65535, 1]]) {
      assert.ok(s.encryptAt(11, 3, off, p.subarray(off, off + len)).equals(sealed.subarray(off, off + len)), `slice ${off}+${len}`);
    }
    assert.ok(!s.encryptAt(11, 4, 0, p.subarray(0, 64)).equals(sealed.subarray(0, 64)), 'another epoch gives other bytes');
    assert.throws(() => s.encryptAt(11, 3, -1, p.subarray(0, 4)), (e: unknown) => isShoalError(e, ErrorCode.BAD_REQUEST));
  });
  it('seals into a caller\'s buffer to the same bytes, and refuses one too short', () => {
    const s = createChunkSealer(key, tid);
    const p = randomBytes(5000);
    const into = Buffer.alloc(8000, 0xaa);
    const sealed = s.seal(4, 0, p, undefined, into);
    assert.equal(sealed.buffer, into.buffer);
    assert.ok(sealed.equals(s.seal(4, 0, p)));
    assert.ok(into.subarray(p.length + SEAL_TAG_BYTES).every((b) => b === 0xaa), 'nothing written past the sealed bytes');
    assert.throws(() => s.seal(4, 0, p, undefined, Buffer.alloc(p.length + SEAL_TAG_BYTES - 1)), (e: unknown) => isShoalError(e, ErrorCode.BAD_REQUEST));
  });
  it('uses a different nonce per chunk and per epoch', () => {
    const s = createChunkSealer(key, tid);
    const p = Buffer.alloc(64);
    const a = s.seal(1, 0, p), b = s.seal(2, 0, p), c = s.seal(1, 1, p);
    assert.ok(!a.equals(b) && !a.equals(c) && !b.equals(c));
  });
  it('refuses to reseal a changed plaintext under the same nonce', () => {
    const s = createChunkSealer(key, tid);
    const first = s.seal(3, 0, Buffer.from('hello world'));
    const tag = first.subarray(first.length - SEAL_TAG_BYTES);
    assert.ok(s.seal(3, 0, Buffer.from('hello world'), tag).equals(first));
    assert.throws(() => s.seal(3, 0, Buffer.from('hello w0rld'), tag), authFail);
  });
  it('rejects a forged tag, a flipped bit, another chunk index, another key and another transfer', () => {
    const s = createChunkSealer(key, tid);
    const sealed = s.seal(7, 0, randomBytes(4096));
    const forged = Buffer.from(sealed); forged[forged.length - 1] ^= 1;
    assert.throws(() => s.open(7, 0, forged), authFail);
    const flipped = Buffer.from(sealed); flipped[100] ^= 0x80;
    assert.throws(() => s.open(7, 0, flipped), authFail);
    assert.throws(() => s.open(8, 0, sealed), authFail);
    assert.throws(() => s.open(7, 1, sealed), authFail);
    assert.throws(() => s.open(7, 0, sealed.subarray(0, sealed.length - 1)), authFail);
    assert.throws(() => createChunkSealer(randomBytes(32), tid).open(7, 0, sealed), authFail);
    assert.throws(() => createChunkSealer(key, wireTransferId('transfer-2')).open(7, 0, sealed), authFail);
  });
  it('gives the same bytes through build/shoal_gcm.node as through node:crypto, and each opens the other\'s', (t) => {
    if (!nativeGcmLoaded()) return t.skip('build/shoal_gcm.node is not built here (npm install builds it)');
    const native = createChunkSealer(key, tid);
    const node = createChunkSealer(key, tid, { native: false });
    for (const size of [0, 1, 15, 16, 17, 1448, 65536, 65536 + 7]) {
      const p = randomBytes(size);
      const a = native.seal(12, 2, p), b = node.seal(12, 2, p);
      assert.ok(a.equals(b), `${size} bytes`);
      assert.ok(node.open(12, 2, a).equals(p) && native.open(12, 2, b).equals(p), `${size} bytes open`);
    }
    const forged = native.seal(1, 0, randomBytes(999)); forged[5] ^= 1;
    assert.throws(() => native.open(1, 0, forged), authFail);
    assert.throws(() => node.open(1, 0, forged), authFail);
  });
  it('opens in place or into another buffer, and leaves no unauthenticated plaintext when the tag fails', () => {
    const s = createChunkSealer(key, tid);
    const p = randomBytes(65536);
    const sealed = Buffer.from(s.seal(6, 0, p));
    const plain = s.open(6, 0, sealed, sealed);
    assert.ok(plain.equals(p));
    if (nativeGcmLoaded()) assert.equal(plain.buffer, sealed.buffer, 'decrypted over the sealed bytes');
    const forged = Buffer.from(s.seal(6, 0, p)); forged[forged.length - 1] ^= 1;
    assert.throws(() => s.open(6, 0, forged, forged), authFail);
    const left = forged.subarray(0, p.length);
    // Decrypted in place (native), the bytes are zeroed; through node:crypto the ciphertext stays as it was.
    assert.ok(nativeGcmLoaded() ? left.every((b) => b === 0) : !left.equals(p), 'no plaintext left in the sealed buffer');
    const elsewhere = Buffer.alloc(p.length + 10, 0xee);
    assert.equal(s.open(6, 0, freshSeal(s, p), elsewhere).buffer, elsewhere.buffer);
    assert.ok(elsewhere.subarray(0, p.length).equals(p) && elsewhere.subarray(p.length).every((b) => b === 0xee), 'into another buffer, nothing past the plaintext');
    assert.throws(() => s.open(6, 0, freshSeal(s, p), Buffer.alloc(p.length - 1)), (e: unknown) => isShoalError(e, ErrorCode.BAD_REQUEST));
  });
  it('refuses keys that are not 32 bytes', () => {
    assert.throws(() => createChunkSealer(randomBytes(16), tid), (e) => isShoalError(e, ErrorCode.BAD_REQUEST));
  });
});
