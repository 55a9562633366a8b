/**
 * What a piece server serves from: a PieceSource answers "do you hold piece i of file h" and "where are its
 * bytes". `createPieceRegistry()` is the ready-made one: an agent adds its finished files and its partial
 * files (verified pieces are served from the temp file), the coordinator adds its blobs.
 */
import type { ManifestContent } from '../pieces/piece-map.ts';
import type { PartialFile } from '../pieces/partial-file.ts';
import { Bitfield } from '../pieces/bitfield.ts';

/** A file a source holds: its manifest and the path of its bytes (laid out at piece offsets). */
export interface HeldFile {
  manifest: ManifestContent;
  path: string;
}

/** Where a piece server finds pieces. */
export interface PieceSource {
  /** True when piece `index` of the file `sha256` can be served now. */
  has(sha256: string, index: number): boolean | Promise<boolean>;
  /** The held file, or null when this source holds nothing of it. */
  open(sha256: string): HeldFile | null | Promise<HeldFile | null>;
  /** Optional fast path: which pieces are held (otherwise built from has()). */
  bitfield?(sha256: string): Bitfield | null | Promise<Bitfield | null>;
}

/** A mutable PieceSource over finished files and partial files. */
export interface PieceRegistry extends PieceSource {
  /** Serves every piece of a finished file at `path`. */
  addFile(manifest: ManifestContent, path: string): void;
  /** Serves the verified pieces of a partial file (from its temp file) until removed or replaced. */
  addPartial(partial: PartialFile): void;
  /** Stops serving the file. */
  remove(sha256: string): void;
  /** Content hashes currently served. */
  list(): string[];
}

type Entry = { kind: 'file'; held: HeldFile } | { kind: 'partial'; partial: PartialFile };

/** A registry with nothing in it yet. */
export function createPieceRegistry(): PieceRegistry {
  const entries = new Map<string, Entry>();
  return {
    addFile(manifest, path) {
      entries.set(manifest.sha256, { kind: 'file', held: { manifest, path } });
    },
    addPartial(partial) {
      entries.set(partial.manifest.sha256, { kind: 'partial', partial });
    },
    remove(sha256) {
      entries.delete(sha256);
    },
    list() {
      return [...entries.keys()];
    },
    has(sha256, index) {
      const e = entries.get(sha256);
      if (!e) return false;
      if (e.kind === 'partial') return e.partial.has(index);
      return Number.isInteger(index) && index >= 0 && index < e.held.manifest.pieces.length;
    },
    open(sha256) {
      const e = entries.get(sha256);
      if (!e) return null;
      return e.kind === 'file' ? e.held : { manifest: e.partial.manifest, path: e.partial.path };
    },
    bitfield(sha256) {
      const e = entries.get(sha256);
      if (!e) return null;
      return e.kind === 'partial' ? e.partial.bitfield() : Bitfield.full(e.held.manifest.pieces.length);
    },
  };
}
