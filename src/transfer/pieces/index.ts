/** Pieces: manifests' geometry, hashing, bitfields, safe names and resumable partial files. */
export { Bitfield } from './bitfield.ts';
export { hashFile, choosePieceSize } from './hash-file.ts';
export { pieceCount, pieceRange, checkManifest, type ManifestContent } from './piece-map.ts';
export { openPartialFile, type PartialFile, type OpenPartialFileOptions } from './partial-file.ts';
export { safeBaseName, numberedName } from './safe-base-name.ts';
