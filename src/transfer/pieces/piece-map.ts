/**
 * Piece geometry of a manifest: how many pieces, where each one starts and how long it is. Every part of the
 * data plane (hashing, partial files, piece servers, downloaders, multicast) cuts files the same way here.
 */
import type { Manifest } from '../../protocol/api.ts';
import { Limits } from '../../protocol/limits.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';

/** The parts of a manifest that fix the bytes (no name). */
export type ManifestContent = Pick<Manifest, 'size' | 'sha256' | 'pieceSize' | 'pieces'>;

/** Number of pieces of a file of `size` bytes; an empty file has one empty piece. */
export function pieceCount(size: number, pieceSize: number): number {
  return size === 0 ? 1 : Math.ceil(size / pieceSize);
}

/** Byte offset and length of piece `index`. */
export function pieceRange(m: Pick<Manifest, 'size' | 'pieceSize'>, index: number): { offset: number; length: number } {
  const offset = index * m.pieceSize;
  return { offset, length: Math.max(0, Math.min(m.pieceSize, m.size - offset)) };
}

/** Throws BAD_REQUEST unless the manifest's numbers agree with each other and with the limits. */
export function checkManifest(m: ManifestContent): void {
  const ok =
    Number.isSafeInteger(m.size) && m.size >= 0 &&
    Number.isSafeInteger(m.pieceSize) && m.pieceSize > 0 &&
    /^[0-9a-f]{64}$/.test(m.sha256) &&
    m.pieces.length === pieceCount(m.size, m.pieceSize) &&
    m.pieces.length <= Limits.maxPieces &&
    m.pieces.every((p) => /^[0-9a-f]{64}$/.test(p));
  if (!ok) throw new ShoalError(ErrorCode.BAD_REQUEST, 'manifest is inconsistent (size, piece size, piece count or hashes)');
}
