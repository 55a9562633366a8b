/**
 * What a multicast receiver reports after a pass (over the agent's WebSocket in production, directly in
 * tests), and how the sender merges the reports of many receivers into the work of the next pass.
 */

/** Half-open chunk range [start, end). */
export type ChunkRange = [start: number, end: number];

/** One receiver's view after a pass. */
export interface ReceiverStatus {
  receiverId: string;
  /** Chunks of which nothing usable is held, as sorted, disjoint [start, end) ranges. */
  missing: ChunkRange[];
  /**
   * Chunks held in part: [chunk, fragment indexes still missing]. Repairing single fragments instead of
   * whole chunks is what keeps a 2% loss from costing 60% of a 46-fragment chunk. A receiver holding parity
   * fragments of a chunk lists only as many missing fragments as it still needs (any that many fragments or
   * parity fragments complete it). Optional for senders of older receivers: a chunk absent from both lists
   * is complete.
   */
  partial?: Array<[chunk: number, fragments: number[]]>;
  /** Chunks received, authenticated and written. */
  received: number;
  /** Fraction of the last pass's datagrams that did not arrive, 0..1 (1 until an end-of-pass marker arrived). */
  lossRate: number;
  /**
   * Fraction of the same datagrams that arrived but were dropped because this receiver could not keep up
   * (its disk queue or memory budget was full), 0..1. Link loss says little about the receiver; this says the
   * sender is too fast for it. Optional for senders of older receivers (read as 0).
   */
  overloadRate?: number;
}

/** The union of what several receivers miss: whole chunks and single fragments. */
export interface RepairPlan {
  /** Chunks to send whole, ascending. */
  whole: Set<number>;
  /** Chunks to send in part: chunk → fragment indexes (never also in `whole`). */
  fragments: Map<number, Set<number>>;
  /** For each chunk in `fragments`: the most fragments one receiver needs. When several receivers lack
   * different fragments this is below the union's size, and that many parity fragments repair them all. */
  need: Map<number, number>;
}

/** Merges receivers' reports; chunk indexes outside [0, chunkCount) are ignored. */
export function planRepair(statuses: readonly ReceiverStatus[], chunkCount: number, fragmentsPerChunk: (chunk: number) => number): RepairPlan {
  const whole = new Set<number>();
  const fragments = new Map<number, Set<number>>();
  const need = new Map<number, number>();
  for (const s of statuses) {
    for (const [start, end] of s.missing) {
      const a = Math.max(0, Math.floor(start));
      const b = Math.min(chunkCount, Math.floor(end));
      for (let c = a; c < b; c++) whole.add(c);
    }
  }
  for (const s of statuses) {
    for (const [chunk, frags] of s.partial ?? []) {
      if (!Number.isInteger(chunk) || chunk < 0 || chunk >= chunkCount || whole.has(chunk)) continue;
      const n = fragmentsPerChunk(chunk);
      let set = fragments.get(chunk);
      let mine = 0;
      for (const f of frags) {
        if (!Number.isInteger(f) || f < 0 || f >= n) continue;
        if (!set) fragments.set(chunk, (set = new Set()));
        set.add(f);
        mine++;
      }
      if (mine > (need.get(chunk) ?? 0)) need.set(chunk, Math.min(n, mine));
      if (set && set.size === n) {
        fragments.delete(chunk);
        whole.add(chunk);
      }
    }
  }
  for (const c of whole) {
    fragments.delete(c);
    need.delete(c);
  }
  return { whole, fragments, need };
}

/** Number of chunks a status says are not complete. */
export function missingChunkCount(s: ReceiverStatus): number {
  let n = s.partial?.length ?? 0;
  for (const [a, b] of s.missing) n += Math.max(0, b - a);
  return n;
}
