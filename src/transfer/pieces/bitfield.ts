/**
 * A compact set of piece indexes (one bit per piece, most significant bit first, as in BitTorrent), used for
 * the on-disk resume state of a partial file and for a holder's "which pieces I have" answer.
 */
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';

/** A fixed-length bit set over piece indexes 0..length-1. */
export class Bitfield {
  /** Number of pieces covered. */
  readonly length: number;
  /** Backing bytes: ceil(length / 8), spare bits zero. */
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(length: number, bytes?: Uint8Array) {
    if (!Number.isInteger(length) || length < 0) throw new ShoalError(ErrorCode.BAD_REQUEST, `bad bitfield length ${length}`);
    this.length = length;
    const size = Math.ceil(length / 8);
    if (bytes) {
      if (bytes.length !== size) throw new ShoalError(ErrorCode.BAD_REQUEST, `bitfield of ${length} pieces needs ${size} bytes, got ${bytes.length}`);
      this.bytes = Uint8Array.from(bytes);
      // Spare bits past `length` must be zero so that two encodings of one set are equal.
      if (length % 8 !== 0 && (this.bytes[size - 1] & (0xff >> length % 8)) !== 0) {
        throw new ShoalError(ErrorCode.BAD_REQUEST, 'bitfield has bits set past its length');
      }
      for (const b of this.bytes) this.#count += popcount(b);
    } else {
      this.bytes = new Uint8Array(size);
    }
  }

  /** How many bits are set. */
  get count(): number {
    return this.#count;
  }

  /** True when every piece is set. */
  get complete(): boolean {
    return this.#count === this.length;
  }

  has(i: number): boolean {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) return false;
    return (this.bytes[i >> 3] & (0x80 >> (i & 7))) !== 0;
  }

  set(i: number): void {
    this.#check(i);
    const mask = 0x80 >> (i & 7);
    if ((this.bytes[i >> 3] & mask) === 0) {
      this.bytes[i >> 3] |= mask;
      this.#count++;
    }
  }

  clear(i: number): void {
    this.#check(i);
    const mask = 0x80 >> (i & 7);
    if ((this.bytes[i >> 3] & mask) !== 0) {
      this.bytes[i >> 3] &= ~mask;
      this.#count--;
    }
  }

  /** Indexes not set, ascending. */
  missing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (!this.has(i)) out.push(i);
    return out;
  }

  /** Indexes set, ascending. */
  indexes(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (this.has(i)) out.push(i);
    return out;
  }

  clone(): Bitfield {
    return new Bitfield(this.length, this.bytes);
  }

  /** base64url of the bytes (the `have` field of a holder's answer). */
  toBase64Url(): string {
    return Buffer.from(this.bytes).toString('base64url');
  }

  /** Parses `toBase64Url()` output for a known piece count; throws BAD_REQUEST when it does not fit. */
  static fromBase64Url(length: number, text: string): Bitfield {
    if (text.length > Math.ceil(Math.ceil(length / 8) * 4 / 3) + 4) throw new ShoalError(ErrorCode.BAD_REQUEST, 'bitfield too long');
    return new Bitfield(length, Buffer.from(text, 'base64url'));
  }

  /** A bitfield with every piece set. */
  static full(length: number): Bitfield {
    const b = new Bitfield(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new ShoalError(ErrorCode.BAD_REQUEST, `piece index ${i} out of range 0..${this.length - 1}`);
  }
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
}
