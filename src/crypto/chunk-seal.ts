/**
 * AES-256-GCM sealing of multicast chunks: one AEAD operation per chunk (tens of KiB), never per datagram
 * (per-datagram sealing measured about ten times the CPU in Node).
 *
 * Nonce (96 bits) = transfer id[0..4) ‖ chunk index (u32) ‖ epoch (u16) ‖ 0x0000. A chunk resent in a later
 * pass is resealed with the same nonce and the same plaintext, so it yields the same bytes and receivers can
 * combine fragments from different passes; the sender checks the tag against the first seal before sending
 * (see ChunkSealer.seal's `expectTag`), so the same nonce never covers two different plaintexts. A sender that
 * must seal different bytes (a restart after the source changed) uses a new epoch.
 * AAD = "shoal/mc1" ‖ transfer id ‖ chunk index (u32) ‖ plaintext length (u32) ‖ epoch (u16).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { loadNativeModule } from '../native-module.ts';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import { TRANSFER_ID_BYTES } from '../protocol/datagram-types.ts';

/** GCM tag size, bytes. */
export const SEAL_TAG_BYTES = 16;
/** Key size, bytes. */
export const SEAL_KEY_BYTES = 32;
const AAD_PREFIX = Buffer.from('shoal/mc1');
/** GCM's 32-bit block counter starts at 2 for the data: a chunk may hold up to 2^32 - 2 blocks. Chunks are far
 * smaller (16 MiB at most), so the 128-bit counter of AES-CTR never carries out of the low 32 bits. */
const MAX_CTR_BYTES = 16 * 1024 * 1024 + 16;

/** Seals and opens the chunks of one transfer under one key. */
export interface ChunkSealer {
  /**
   * Ciphertext ‖ tag of `plaintext` as chunk `chunk` (length = plaintext + 16 bytes). With `expectTag`, throws
   * HASH_MISMATCH (before returning any bytes) when the new tag differs, i.e. the plaintext changed since it
   * was first sealed under this nonce. With `into` (at least that long), the result is written at its start
   * and is a view of it; else it is a new buffer.
   */
  seal(chunk: number, epoch: number, plaintext: Uint8Array, expectTag?: Uint8Array, into?: Buffer): Buffer;
  /**
   * Ciphertext of `plaintext` found at byte `offset` of chunk `chunk`, without sealing the rest of the chunk:
   * GCM encrypts with AES-CTR whose counter for byte i is block 2 + ⌊i/16⌋ under the chunk's nonce. Used to
   * resend a few fragments of a chunk whose tag the sender kept from the first seal. The caller must know
   * that the plaintext is the one first sealed (there is no tag here to check it).
   */
  encryptAt(chunk: number, epoch: number, offset: number, plaintext: Uint8Array): Buffer;
  /**
   * Plaintext of a sealed chunk; throws HASH_MISMATCH when the tag does not authenticate it. With `into` (at
   * least the plaintext's length; `sealed` itself to decrypt in place), the plaintext is written at its start
   * and returned as a view of it; when the tag fails, those bytes are zeroed (native) or left untouched.
   */
  open(chunk: number, epoch: number, sealed: Uint8Array, into?: Uint8Array): Buffer;
}

interface NativeGcm {
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
}

/**
 * build/shoal_gcm.node (native/shoal_gcm.c): the same AES-256-GCM through the OpenSSL inside Node.js, written
 * into buffers the caller owns. node:crypto returns each update as a new buffer, and that allocation, its page
 * faults and the copy out of it cost about twice the cipher (256 MiB in 64 KiB chunks: 0.31 s against 0.10 s
 * here). Null where it is not built or SHOAL_GCM=node.
 */
const loadNativeGcm = (): NativeGcm | null => loadNativeModule<NativeGcm>('shoal_gcm', process.env.SHOAL_GCM === 'node');

/** The 8-byte wire id of a transfer, derived from its string id (SHA-256 prefix). */
export function wireTransferId(id: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(id).digest().subarray(0, TRANSFER_ID_BYTES));
}

/** Whether build/shoal_gcm.node is in use (else node:crypto seals and opens). */
export function nativeGcmLoaded(): boolean {
  return loadNativeGcm() !== null;
}

/** A sealer for one transfer: `key` 32 bytes, `transferId` the 8-byte wire id. `native: false` uses node:crypto
 * even where build/shoal_gcm.node is built (both give the same bytes). */
export function createChunkSealer(key: Uint8Array, transferId: Uint8Array, options: { native?: boolean } = {}): ChunkSealer {
  if (key.byteLength !== SEAL_KEY_BYTES) throw new ShoalError(ErrorCode.BAD_REQUEST, `chunk key must be ${SEAL_KEY_BYTES} bytes`);
  if (transferId.byteLength !== TRANSFER_ID_BYTES) throw new ShoalError(ErrorCode.BAD_REQUEST, `transfer id must be ${TRANSFER_ID_BYTES} bytes`);
  const k = Buffer.from(key);
  const tid = Buffer.from(transferId);
  const gcm = options.native === false ? null : loadNativeGcm();

  const nonce = (chunk: number, epoch: number): Buffer => {
    const n = Buffer.alloc(12);
    tid.copy(n, 0, 0, 4);
    n.writeUInt32BE(chunk, 4);
    n.writeUInt16BE(epoch, 8);
    return n;
  };
  const aad = (chunk: number, epoch: number, length: number): Buffer => {
    const a = Buffer.alloc(AAD_PREFIX.length + TRANSFER_ID_BYTES + 10);
    AAD_PREFIX.copy(a, 0);
    tid.copy(a, AAD_PREFIX.length);
    const at = AAD_PREFIX.length + TRANSFER_ID_BYTES;
    a.writeUInt32BE(chunk, at);
    a.writeUInt32BE(length, at + 4);
    a.writeUInt16BE(epoch, at + 8);
    return a;
  };
  const checkIndex = (chunk: number, epoch: number) => {
    if (!Number.isInteger(chunk) || chunk < 0 || chunk > 0xffff_ffff || !Number.isInteger(epoch) || epoch < 0 || epoch > 0xffff) {
      throw new ShoalError(ErrorCode.BAD_REQUEST, 'chunk or epoch out of range');
    }
  };

  return {
    seal(chunk, epoch, plaintext, expectTag, into) {
      checkIndex(chunk, epoch);
      const size = plaintext.byteLength + SEAL_TAG_BYTES;
      if (into && into.length < size) throw new ShoalError(ErrorCode.BAD_REQUEST, `seal output of ${into.length} bytes for ${size}`);
      const out = into ? into.subarray(0, size) : Buffer.allocUnsafe(size);
      let tag: Buffer;
      if (gcm) {
        gcm.seal(k, nonce(chunk, epoch), aad(chunk, epoch, plaintext.byteLength), plaintext, out);
        tag = out.subarray(plaintext.byteLength);
      } else {
        const c = createCipheriv('aes-256-gcm', k, nonce(chunk, epoch));
        c.setAAD(aad(chunk, epoch, plaintext.byteLength));
        const body = c.update(plaintext);
        body.copy(out, 0);
        c.final().copy(out, body.length);
        tag = c.getAuthTag();
        tag.copy(out, plaintext.byteLength);
      }
      if (expectTag !== undefined && !tag.equals(expectTag)) {
        out.fill(0);
        throw new ShoalError(ErrorCode.HASH_MISMATCH, `chunk ${chunk} changed since it was first sealed`, { chunk });
      }
      return out;
    },
    encryptAt(chunk, epoch, offset, plaintext) {
      checkIndex(chunk, epoch);
      if (!Number.isInteger(offset) || offset < 0 || offset + plaintext.byteLength > MAX_CTR_BYTES) throw new ShoalError(ErrorCode.BAD_REQUEST, 'offset out of range');
      const skip = offset % 16;
      const iv = Buffer.alloc(16);
      nonce(chunk, epoch).copy(iv, 0);
      iv.writeUInt32BE(2 + (offset - skip) / 16, 12);
      const c = createCipheriv('aes-256-ctr', k, iv);
      if (skip > 0) c.update(Buffer.alloc(skip));
      const out = c.update(plaintext);
      c.final();
      return out;
    },
    open(chunk, epoch, sealed, into) {
      checkIndex(chunk, epoch);
      if (sealed.byteLength < SEAL_TAG_BYTES) throw new ShoalError(ErrorCode.HASH_MISMATCH, 'sealed chunk shorter than its tag');
      const len = sealed.byteLength - SEAL_TAG_BYTES;
      if (into && into.byteLength < len) throw new ShoalError(ErrorCode.BAD_REQUEST, `open output of ${into.byteLength} bytes for ${len}`);
      const out = into ? Buffer.from(into.buffer, into.byteOffset, len) : null;
      if (gcm) {
        const target = out ?? Buffer.allocUnsafe(len);
        if (!gcm.open(k, nonce(chunk, epoch), aad(chunk, epoch, len), sealed, target)) {
          throw new ShoalError(ErrorCode.HASH_MISMATCH, `chunk ${chunk} failed authentication`, { chunk });
        }
        return target;
      }
      const d = createDecipheriv('aes-256-gcm', k, nonce(chunk, epoch));
      d.setAAD(aad(chunk, epoch, len));
      d.setAuthTag(Buffer.from(sealed.buffer, sealed.byteOffset + len, SEAL_TAG_BYTES));
      const body = d.update(Buffer.from(sealed.buffer, sealed.byteOffset, len));
      try {
        const fin = d.final();
        const plain = fin.length === 0 ? body : Buffer.concat([body, fin]);
        if (!out) return plain;
        plain.copy(out);
        return out;
      } catch (err) {
        body.fill(0);
        throw new ShoalError(ErrorCode.HASH_MISMATCH, `chunk ${chunk} failed authentication`, { chunk }, { cause: err });
      }
    },
  };
}
