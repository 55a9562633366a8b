/**
 * Streams a file once and computes both the whole-file SHA-256 and the SHA-256 of each piece: the content
 * part of a manifest, computed at share time.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ManifestContent } from './piece-map.ts';
import { pieceCount } from './piece-map.ts';
import { Limits } from '../../protocol/limits.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';

/** Hashes `path` in one pass; `pieceSize` in bytes (default 4 MiB). Throws ABORTED when `signal` fires. */
export async function hashFile(path: string, pieceSize: number = Limits.pieceBytes, signal?: AbortSignal): Promise<ManifestContent> {
  if (!Number.isSafeInteger(pieceSize) || pieceSize <= 0) throw new ShoalError(ErrorCode.BAD_REQUEST, `bad piece size ${pieceSize}`);
  const whole = createHash('sha256');
  const pieces: string[] = [];
  let piece = createHash('sha256');
  let inPiece = 0;
  let size = 0;
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024, signal });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      whole.update(chunk);
      size += chunk.length;
      let pos = 0;
      while (pos < chunk.length) {
        const take = Math.min(pieceSize - inPiece, chunk.length - pos);
        piece.update(chunk.subarray(pos, pos + take));
        inPiece += take;
        pos += take;
        if (inPiece === pieceSize) {
          pieces.push(piece.digest('hex'));
          piece = createHash('sha256');
          inPiece = 0;
        }
      }
    }
  } catch (err) {
    if (signal?.aborted) throw new ShoalError(ErrorCode.ABORTED, 'hashing aborted', undefined, { cause: err });
    throw err;
  }
  if (inPiece > 0 || size === 0) pieces.push(piece.digest('hex'));
  if (pieces.length !== pieceCount(size, pieceSize)) throw new ShoalError(ErrorCode.INTERNAL, 'piece count mismatch while hashing');
  if (pieces.length > Limits.maxPieces) {
    throw new ShoalError(ErrorCode.PAYLOAD_TOO_LARGE, `${pieces.length} pieces is more than ${Limits.maxPieces}; use a larger piece size`);
  }
  return { size, sha256: whole.digest('hex'), pieceSize, pieces };
}

/** Piece size for a file of `size` bytes: the default, doubled until the piece count fits the limit. */
export function choosePieceSize(size: number): number {
  let ps: number = Limits.pieceBytes;
  while (Math.ceil(size / ps) > Limits.maxPieces) ps *= 2;
  return ps;
}
