/**
 * Fast deterministic test data for benchmarks: an AES-128-CTR keystream (seeded by a string) written in
 * 4 MiB blocks, so gigabytes are produced at disk speed and never compress or deduplicate.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const blockBytes = 4 * 1024 * 1024;

/** Writes `bytes` pseudo-random bytes (the same for the same `seed`) to `path`, replacing it. */
export async function writePseudoRandomFile(path: string, bytes: number, seed: string): Promise<void> {
  const keyIv = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', keyIv.subarray(0, 16), keyIv.subarray(16, 32));
  const zeros = Buffer.alloc(blockBytes);
  const fh = await open(path, 'w');
  try {
    let left = bytes;
    while (left > 0) {
      const n = Math.min(left, blockBytes);
      const block = cipher.update(n === blockBytes ? zeros : zeros.subarray(0, n));
      let off = 0;
      while (off < block.length) off += (await fh.write(block, off, block.length - off)).bytesWritten;
      left -= n;
    }
  } finally {
    await fh.close();
  }
}
