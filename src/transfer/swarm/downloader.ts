/**
 * The multi-source downloader of the swarm: fetches the missing pieces of a PartialFile from several holders
 * at once, several HTTPS streams (connections) per holder, rarest piece first, with an end game that asks a
 * second holder for pieces still in flight and cancels the loser. A piece's bytes go to the file as they are
 * decrypted, hashed on the way (PartialFile.pieceWriter), and the piece counts only once its hash matches; only
 * an end-game second request for a piece is held in a buffer (PartialFile.writePiece), so the two never write
 * the same bytes at once. A holder that serves a bad piece is dropped and reported, the piece fetched
 * elsewhere; a holder that fails is retried with backoff, then dropped. The caller finalizes the partial file
 * afterwards.
 *
 * Why no piece buffer: with about 30 requests in flight per agent, 4 MiB buffers made a receiver touch about
 * 120 MiB of fresh memory per download and copy every byte once more; on the swarm bed (a VM where first-touch
 * memory is slow) the page faults of those copies were 6.6 % of all CPU samples, and now are under 1 %.
 */
import type { Manifest } from '../../protocol/api.ts';
import type { Logger } from '../../logger.ts';
import { ErrorCode, ShoalError, isShoalError } from '../../protocol/errors.ts';
import type { ErrorCode as ErrorCodeT } from '../../protocol/errors.ts';
import { Bitfield } from '../pieces/bitfield.ts';
import { pieceRange } from '../pieces/piece-map.ts';
import type { PartialFile, PieceWriter } from '../pieces/partial-file.ts';
import { normalizeFingerprint } from './pinned-dispatcher.ts';
import { createPieceClient, type BodySink, type PieceClient } from './piece-client.ts';
import type { HaveResponse } from './piece-server.ts';

/** A peer that serves pieces: `url` is its base (the piece routes are `<url>/pieces/…`). */
export interface Holder {
  id: string;
  url: string;
  /** SHA-256 fingerprint of its TLS certificate; null = ordinary CA verification. */
  fingerprint?: string | null;
}

/** Progress of a download, reported at most every `progressIntervalMs`. */
export interface DownloadProgress {
  /** Bytes verified so far (resumed pieces included). */
  bytes: number;
  /** File size in bytes. */
  total: number;
  /** Receive rate, bytes/s, smoothed over the last seconds. */
  rate: number;
  /** Bytes received from each holder in this run, by holder id. */
  perHolder: Record<string, number>;
}

export interface DownloadOptions {
  manifest: Manifest;
  holders: Holder[];
  /** Ticket for this file, sent as `Authorization: Bearer`. */
  ticket: string;
  /** Asked for a fresh ticket when holders say the current one expired (tickets live minutes, big files
   * longer); without it an expired ticket ends the download with TICKET_EXPIRED. */
  refreshTicket?: () => Promise<string>;
  partial: PartialFile;
  /** Parallel connections per holder (default 4). */
  streams?: number;
  signal?: AbortSignal;
  logger: Logger;
  onProgress?: (p: DownloadProgress) => void;
  /** ms between progress reports (default 250). */
  progressIntervalMs?: number;
  /** Consecutive failures before a holder is dropped (default 4). */
  maxFailures?: number;
  /** ms without any progress possible (no holder has the missing pieces) before giving up (default 30 s). */
  stallTimeoutMs?: number;
  /** ms between asking holders that lack pieces which ones they have now: receivers that are downloading
   * the same file serve each other what they verified (default 1000). */
  haveRefreshMs?: number;
  /** ms for one piece request before it is abandoned (default 120 s); a holder silent for 30 s (or this,
   * when shorter) fails sooner. */
  requestTimeoutMs?: number;
  /** Extra CA certificates for holders without a fingerprint. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Holder ids that are seeds of last resort (default `['coordinator']`, the original sharer). While other
   * holders are in the list (receivers of the same file, finished members), a seed is asked only for pieces
   * no other holder has, least sent first, on `seedStreams` streams: its uplink then carries about one copy
   * and the receivers trade the rest. Alone (every other holder dropped), a seed gets `streams` streams. */
  seeds?: string[];
  /** Streams to a seed while other holders are present (default 2: few, so each receiver holds only a
   * couple of the seed's pieces at a time, yet enough to keep the seed's uplink busy with eight receivers). */
  seedStreams?: number;
  /** Most piece requests in flight at once over all holders (default the larger of 16 and `streams`): with
   * many holders each gets fewer than `streams`, spread evenly. Without a cap a hundred holders with 4 streams
   * each would mean 400 connections per receiver. On the swarm bed (8 receivers on 2 cores) 2 streams to each
   * of 9 holders were 1–5 % faster than 4 in 6 runs of 6, which is within that host's noise. */
  maxRequests?: number;
}

export interface DownloadResult {
  /** Pieces fetched and verified in this run. */
  piecesFetched: number;
  /** Pieces that were already verified when the run started. */
  piecesResumed: number;
  /** Bytes received in this run (wasted end-game and bad bytes included). */
  bytesReceived: number;
  /** Bytes received per holder id in this run. */
  bytesPerHolder: Record<string, number>;
  /** Holders that served a piece that failed verification. */
  badHolders: Array<{ id: string; reason: string }>;
  /** Every holder dropped for any reason (bad pieces included). */
  droppedHolders: Array<{ id: string; reason: string; code: ErrorCodeT }>;
}

interface HolderState {
  holder: Holder;
  base: string;
  /** Pieces and bitfields go through this client (see piece-client.ts). */
  client: PieceClient;
  /** Pieces it said it has; null = assume every piece. */
  have: Bitfield | null;
  ready: boolean;
  /** Waiting for a fresh ticket. */
  paused: boolean;
  active: number;
  failures: number;
  dropped: { reason: string; code: ErrorCodeT } | null;
  backoffUntil: number;
  timer: NodeJS.Timeout | null;
  bytes: number;
  lastRefresh: number;
  refreshing: boolean;
  /** Times the holder said it started sending each piece (to anyone), plus our own requests since. */
  sent: Uint8Array | null;
  /** A seed of last resort (see DownloadOptions.seeds). */
  seed: boolean;
  /** The holder gave a `sent` hint: worth asking again for its bitfield even when it holds every piece. */
  hints: boolean;
}

interface InFlight {
  holder: HolderState;
  index: number;
  /** The ticket the request was sent with. */
  ticket: string;
  /** Date.now() when it left. */
  startedAt: number;
  controller: AbortController;
  cancelled: boolean;
  /** Bytes go straight to the file (the piece's only live request when it left); else into `buffer`. */
  stream: boolean;
  /** The piece buffer it holds (from the pool), returned when the request unwinds. */
  buffer: Buffer | null;
  /** A local failure while writing streamed bytes (disk full, file closed): ends the download. */
  localError: unknown;
}

/** Downloads every missing piece of `partial`; resolves with per-holder figures, throws PEER_FAILED (or the
 * ticket error every holder gave) when no holder can finish it, ABORTED when `signal` fires. */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { manifest, partial } = options;
  let ticket = options.ticket;
  let refreshing: Promise<boolean> | null = null;
  let refreshes = 0;
  const log = options.logger.child('swarm:downloader');
  const streams = Math.max(1, Math.min(64, options.streams ?? 4));
  const maxFailures = options.maxFailures ?? 4;
  const stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
  const progressEvery = options.progressIntervalMs ?? 250;
  const seedIds = new Set(options.seeds ?? ['coordinator']);
  const seedStreams = Math.max(1, Math.min(streams, options.seedStreams ?? 2));
  const maxRequests = Math.max(1, options.maxRequests ?? Math.max(16, streams));
  const count = manifest.pieces.length;
  if (partial.manifest.sha256 !== manifest.sha256) throw new ShoalError(ErrorCode.BAD_REQUEST, 'partial file is for another manifest');
  if (options.signal?.aborted) throw new ShoalError(ErrorCode.ABORTED, 'download aborted');

  const want = new Set(partial.missing());
  const piecesResumed = count - want.size;
  const inflight = new Map<number, InFlight[]>();
  const avail = new Int32Array(count);
  const badHolders: DownloadResult['badHolders'] = [];
  const droppedHolders: DownloadResult['droppedHolders'] = [];
  let piecesFetched = 0;
  let bytesReceived = 0;

  // Every URL and fingerprint is checked before any connection pool exists, so a bad one leaks nothing.
  const checked = dedupe(options.holders).map((h) => {
    if (h.fingerprint) normalizeFingerprint(h.fingerprint);
    return { h, base: checkUrl(h.url) };
  });
  const states: HolderState[] = checked.map(({ h, base }) => ({
    holder: h,
    base,
    // One connection more than the streams, so a bitfield refresh need not wait behind pieces.
    client: createPieceClient({ url: base, fingerprint: h.fingerprint, ca: options.ca, connections: streams + 1, idleTimeoutMs: Math.min(30_000, requestTimeoutMs) }),
    have: null,
    ready: false,
    paused: false,
    active: 0,
    failures: 0,
    dropped: null,
    backoffUntil: 0,
    timer: null,
    bytes: 0,
    lastRefresh: 0,
    refreshing: false,
    sent: null,
    seed: seedIds.has(h.id),
    hints: false,
  }));
  // A seed's `sent` counts start with our own requests even when it gives no hint of its own.
  for (const s of states) if (s.seed) s.sent = new Uint8Array(count);
  if (states.length === 0 && want.size > 0) throw new ShoalError(ErrorCode.PEER_FAILED, 'no holder to download from');

  let settle!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
  });
  let finished = false;
  let lastProgressAt = 0;
  let progressTimer: NodeJS.Timeout | null = null;
  let stallSince: number | null = null;
  let stallTimer: NodeJS.Timeout | null = null;
  let haveTimer: NodeJS.Timeout | null = null;
  let tickTimer: NodeJS.Timeout | null = null;
  /** Smoothed time of one piece request, ms (end-game patience). */
  let pieceMs = 0;
  let rate = 0;
  let rateBytes = 0;
  let rateAt = Date.now();

  const finish = (err?: unknown) => {
    if (finished) return;
    finished = true;
    for (const list of inflight.values()) for (const f of list) abortReq(f);
    settle(err);
  };
  const onAbort = () => finish(new ShoalError(ErrorCode.ABORTED, 'download aborted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const perHolder = () => Object.fromEntries(states.map((s) => [s.holder.id, s.bytes]));
  const emitProgress = (force = false) => {
    if (!options.onProgress) return;
    const now = Date.now();
    if (!force && now - lastProgressAt < progressEvery) {
      progressTimer ??= setTimeout(() => {
        progressTimer = null;
        if (!finished) emitProgress(true);
      }, progressEvery - (now - lastProgressAt));
      return;
    }
    lastProgressAt = now;
    const dt = (now - rateAt) / 1000;
    if (dt >= 0.2) {
      const inst = rateBytes / dt;
      rate = rate === 0 ? inst : rate * 0.6 + inst * 0.4;
      rateBytes = 0;
      rateAt = now;
    }
    try {
      options.onProgress({ bytes: partial.bytesVerified, total: manifest.size, rate: Math.round(rate), perHolder: perHolder() });
    } catch (err) {
      log.warn('progress callback threw', { err });
    }
  };

  const live = () => states.filter((s) => !s.dropped);

  const drop = (s: HolderState, code: ErrorCodeT, reason: string) => {
    if (s.dropped) return;
    s.dropped = { code, reason };
    droppedHolders.push({ id: s.holder.id, reason, code });
    log.warn('holder dropped', { holder: s.holder.id, code, reason });
    if (s.timer) clearTimeout(s.timer);
    for (let i = 0; i < count; i++) if (!s.have || s.have.has(i)) avail[i]--;
    for (const list of inflight.values()) for (const f of list) if (f.holder === s) abortReq(f);
  };

  const holds = (s: HolderState, i: number) => !s.have || s.have.has(i);

  /** Live holders other than seeds; a seed is a last resort only while there is one. */
  const peers = () => states.filter((x) => !x.dropped && !x.seed);
  /** Other holders that hold piece i and can be asked for it now or soon (bitfield known). */
  const peerHolds = (list: HolderState[], i: number) => list.some((x) => x.ready && holds(x, i));

  const pickFromSeed = (s: HolderState, list: HolderState[]): number | null => {
    // Only pieces no other holder has, the ones the seed sent least first (its `sent` hint, refreshed with
    // its bitfield), at random among equals: receivers that start together then take different pieces from
    // the seed and trade them, and the seed's uplink carries about one copy of the file.
    let best = -1;
    let bestSent = Infinity;
    let ties = 0;
    for (const i of want) {
      if (inflight.has(i) || !holds(s, i) || peerHolds(list, i)) continue;
      const sent = s.sent ? s.sent[i] : 0;
      if (sent < bestSent) {
        best = i;
        bestSent = sent;
        ties = 1;
      } else if (sent === bestSent && Math.random() * ++ties < 1) {
        best = i;
      }
    }
    if (best < 0) return null;
    // Every such piece is already on its way from the seed to someone: wait for it to reach the swarm while
    // other holders keep us busy, rather than take a second copy from the seed.
    if (bestSent > 0 && list.some((x) => x.active > 0)) return null;
    return best;
  };

  const pick = (s: HolderState): number | null => {
    if (s.seed) {
      const list = peers();
      if (list.length > 0) {
        const i = pickFromSeed(s, list);
        if (i !== null) return i;
        for (const w of want) if (!inflight.has(w)) return null;
        // Everything wanted is in flight: the end game below may ask the seed too, late.
      }
    }
    // Pieces this holder never sent first (its `sent` hint), then rarest first, then at random (reservoir
    // sampling): receivers that fetch from one sharer at the same time then mostly ask it for different
    // pieces, which they trade among themselves.
    let best = -1;
    let bestKey = Infinity;
    let ties = 0;
    for (const i of want) {
      if (inflight.has(i) || !holds(s, i)) continue;
      const sent = s.sent ? s.sent[i] : 0;
      // A piece this holder already sent that another holder now has: fetch it there and keep this
      // holder's upload (the sharer's, usually the scarcest) for pieces the swarm lacks.
      if (sent > 0 && avail[i] >= 2) continue;
      const key = (sent > 0 ? 1 << 20 : 0) + avail[i] * 256 + sent;
      if (key < bestKey) {
        best = i;
        bestKey = key;
        ties = 1;
      } else if (key === bestKey && Math.random() * ++ties < 1) {
        best = i;
      }
    }
    if (best >= 0) return best;
    // End game: every wanted piece is in flight somewhere. Ask this holder too for the piece whose request
    // has run longest, once it runs well past the usual piece time (a slow or stalled holder), and let the
    // first good answer win. Duplicating earlier would spend the sharer's upload, the swarm's scarcest link.
    const now = Date.now();
    const patience = Math.max(500, 2 * pieceMs);
    let oldest = Infinity;
    for (const [i, all] of inflight) {
      // Requests cancelled because the piece arrived stay listed until they unwind: not candidates.
      const list = all.filter((f) => !f.cancelled);
      if (!want.has(i) || list.length === 0 || !holds(s, i) || list.some((f) => f.holder === s) || list.length >= 2) continue;
      if (now - list[0].startedAt > patience && list[0].startedAt < oldest) {
        best = i;
        oldest = list[0].startedAt;
      }
    }
    return best >= 0 ? best : null;
  };

  let turn = 0;
  const pump = () => {
    if (finished) return;
    if (want.size === 0) {
      finish();
      return;
    }
    const now = Date.now();
    const ready: HolderState[] = [];
    for (const s of states) {
      if (s.dropped || !s.ready || s.paused) continue;
      if (s.backoffUntil > now) {
        s.timer ??= setTimeout(() => {
          s.timer = null;
          pump();
        }, s.backoffUntil - now);
        continue;
      }
      ready.push(s);
    }
    // Requests go round the holders one at a time, from another holder each time, so that under maxRequests
    // every holder gets its share.
    if (ready.length > 1) ready.push(...ready.splice(0, ++turn % ready.length));
    let total = states.reduce((n, s) => n + (s.dropped ? 0 : s.active), 0);
    const seedLimit = peers().length > 0 ? seedStreams : streams;
    for (let level = 1; level <= streams && total < maxRequests && ready.length > 0; level++) {
      for (let k = 0; k < ready.length && total < maxRequests; k++) {
        const s = ready[k];
        if (s.active >= level || s.active >= (s.seed ? seedLimit : streams)) continue;
        const i = pick(s);
        if (i === null) {
          ready.splice(k--, 1); // nothing for it now: not asked again in this round
          continue;
        }
        start(s, i);
        total++;
      }
    }
    const alive = live();
    const active = alive.reduce((n, s) => n + s.active, 0);
    const waiting = alive.some((s) => !s.ready || s.paused || s.backoffUntil > now);
    if (alive.length === 0) {
      finish(failure());
      return;
    }
    if (active === 0 && !waiting) {
      // Nobody can serve what is missing right now: partial holders may get it later, so refresh their
      // bitfields for a while before giving up.
      stallSince ??= now;
      if (now - stallSince >= stallTimeoutMs) {
        finish(new ShoalError(ErrorCode.PEER_FAILED, `no holder has the ${want.size} missing pieces`, { missing: want.size }));
        return;
      }
      stallTimer ??= setTimeout(() => {
        stallTimer = null;
        for (const s of live()) if (s.have && Date.now() - s.lastRefresh >= 1000) void loadHave(s);
        pump();
      }, 1000);
    } else {
      stallSince = null;
    }
  };

  const failure = () => {
    const codes = new Set(droppedHolders.map((d) => d.code));
    const only = codes.size === 1 ? [...codes][0] : null;
    const code = only === ErrorCode.TICKET_EXPIRED || only === ErrorCode.TICKET_INVALID || only === ErrorCode.FORBIDDEN ? only : ErrorCode.PEER_FAILED;
    return new ShoalError(code, `every holder failed (${want.size} pieces missing)`, { badHolders, droppedHolders });
  };

  const loadHave = async (s: HolderState) => {
    if (s.refreshing || s.dropped) return;
    s.refreshing = true;
    s.lastRefresh = Date.now();
    try {
      const r = await s.client.get(`/pieces/${manifest.sha256}`, { authorization: `Bearer ${ticket}` }, null, () => undefined, AbortSignal.timeout(15_000));
      const text = r.text;
      if (r.status === 200) {
        const body = JSON.parse(text) as HaveResponse;
        if (body.pieceCount !== count) throw new ShoalError(ErrorCode.PEER_FAILED, 'holder has another piece count');
        const next = Bitfield.fromBase64Url(count, body.have);
        if (typeof body.sent === 'string' && body.sent.length <= Math.ceil((count * 4) / 3) + 4) {
          const sent = Buffer.from(body.sent, 'base64url');
          if (sent.length === count) {
            s.sent = new Uint8Array(sent);
            s.hints = true;
          }
        }
        if (!s.dropped) {
          for (let i = 0; i < count; i++) avail[i] += (next.has(i) ? 1 : 0) - (holds(s, i) ? 1 : 0);
          s.have = next;
        }
      } else {
        const code = errorCode(text);
        if (code === ErrorCode.TICKET_EXPIRED && options.refreshTicket) {
          // The piece requests will refresh it; the bitfield is optional.
        } else if (code === ErrorCode.FILE_NOT_FOUND && !s.dropped) {
          // A receiver of the same delivery that has not opened the file yet: it holds nothing now, may hold
          // pieces soon (asked again every haveRefreshMs), and is never asked for a piece meanwhile.
          for (let i = 0; i < count; i++) avail[i] -= holds(s, i) ? 1 : 0;
          s.have = new Bitfield(count);
        } else if (code === ErrorCode.TICKET_INVALID || code === ErrorCode.TICKET_EXPIRED || code === ErrorCode.FORBIDDEN) {
          drop(s, code, `holder answered ${r.status} ${code}`);
        }
        // Anything else (an older holder without this route): assume it has every piece.
      }
    } catch (err) {
      if (isShoalError(err, ErrorCode.TLS_FINGERPRINT_MISMATCH)) drop(s, err.code, err.message);
      else log.debug('holder bitfield unavailable, assuming it has every piece', { holder: s.holder.id, err });
    } finally {
      s.refreshing = false;
      s.ready = true;
      pump();
    }
  };

  const abortReq = (f: InFlight) => {
    if (f.cancelled) return;
    f.cancelled = true;
    f.controller.abort();
  };

  const removeInflight = (f: InFlight) => {
    const list = inflight.get(f.index);
    if (!list) return;
    const rest = list.filter((x) => x !== f);
    if (rest.length === 0) inflight.delete(f.index);
    else inflight.set(f.index, rest);
  };

  const start = (s: HolderState, index: number) => {
    // One streaming writer per piece: a second request (end game) buffers, and whichever verifies first wins.
    const stream = !(inflight.get(index) ?? []).some((x) => x.stream && !x.cancelled);
    const f: InFlight = { holder: s, index, ticket, startedAt: Date.now(), controller: new AbortController(), cancelled: false, stream, buffer: null, localError: undefined };
    inflight.set(index, [...(inflight.get(index) ?? []), f]);
    if (s.sent && s.sent[index] < 255) s.sent[index]++;
    log.trace('piece request', { holder: s.holder.id, index, requests: inflight.get(index)!.length });
    s.active++;
    const p = fetchPiece(f)
      .then(async (got) => {
        if (f.cancelled || finished) return;
        let ok: boolean | null;
        try {
          ok = got.writer ? await got.writer.finish() : await partial.writePiece(index, got.bytes!);
        } catch (err) {
          // A local failure (disk full, file closed) is not the holder's fault and ends the download.
          finish(err);
          return;
        }
        if (finished) return;
        if (ok === null) return; // the end-game copy of another holder is being written instead
        if (!ok) {
          badHolders.push({ id: s.holder.id, reason: `piece ${index} failed verification` });
          drop(s, ErrorCode.HASH_MISMATCH, `served a bad piece (${index})`);
          return;
        }
        s.failures = 0;
        pieceMs = pieceMs === 0 ? Date.now() - f.startedAt : pieceMs * 0.8 + (Date.now() - f.startedAt) * 0.2;
        if (want.delete(index)) piecesFetched++;
        for (const other of inflight.get(index) ?? []) if (other !== f) abortReq(other);
        emitProgress(partial.complete);
      })
      .catch((err: unknown) => {
        if (f.cancelled || finished) return;
        if (f.localError !== undefined) {
          finish(f.localError);
          return;
        }
        onRequestError(f, err);
      })
      .finally(() => {
        if (f.buffer && pool.length < states.length * streams) pool.push(f.buffer);
        f.buffer = null;
        s.active--;
        removeInflight(f);
        running.delete(p);
        pump();
      });
    running.add(p);
  };
  const running = new Set<Promise<unknown>>();
  const pool: Buffer[] = [];

  const onRequestError = (f: InFlight, err: unknown) => {
    const { holder: s, index } = f;
    const code = isShoalError(err) ? err.code : null;
    if (code === ErrorCode.TICKET_EXPIRED && options.refreshTicket) {
      if (f.ticket !== ticket) return; // already refreshed since this request left: just ask again
      refreshing ??= (async () => {
        // Bounded: a clock far off between us and the holders must not make us ask forever.
        if (++refreshes > 20) return false;
        try {
          const next = await options.refreshTicket!();
          if (next === ticket) return false;
          ticket = next;
          log.debug('ticket refreshed', { refreshes });
          return true;
        } catch (e) {
          log.warn('ticket refresh failed', { err: e });
          return false;
        }
      })().finally(() => (refreshing = null));
      s.paused = true;
      void refreshing.then((ok) => {
        s.paused = false;
        if (!ok) drop(s, code, (err as Error).message);
        pump();
      });
      return;
    }
    if (code === ErrorCode.PIECE_NOT_FOUND) {
      if (!s.have) s.have = Bitfield.full(count);
      if (s.have.has(index)) {
        s.have.clear(index);
        avail[index]--;
      }
      return;
    }
    if (code === ErrorCode.HASH_MISMATCH) {
      badHolders.push({ id: s.holder.id, reason: (err as Error).message });
      drop(s, code, (err as Error).message);
      return;
    }
    if (
      code === ErrorCode.TICKET_INVALID || code === ErrorCode.TICKET_EXPIRED || code === ErrorCode.FORBIDDEN ||
      code === ErrorCode.FILE_NOT_FOUND || code === ErrorCode.TLS_FINGERPRINT_MISMATCH
    ) {
      drop(s, code, (err as Error).message);
      return;
    }
    s.failures++;
    log.debug('piece request failed', { holder: s.holder.id, index, failures: s.failures, err });
    if (s.failures >= maxFailures) {
      drop(s, ErrorCode.PEER_FAILED, `${s.failures} failures in a row, last: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    s.backoffUntil = Date.now() + Math.min(200 * 2 ** (s.failures - 1), 5000);
  };

  const fetchPiece = async (f: InFlight): Promise<{ writer: PieceWriter | null; bytes: Buffer | null }> => {
    const s = f.holder;
    const { length } = pieceRange(manifest, f.index);
    let writer: PieceWriter | null = null;
    let into: Buffer | BodySink;
    if (f.stream) {
      try {
        writer = partial.pieceWriter(f.index);
      } catch (err) {
        f.localError = err;
        throw err;
      }
      const w = writer;
      const sink: BodySink = {
        length,
        write: (bytes, at) => {
          if (f.cancelled) return; // a cancelled request writes nothing more, whatever is still on the wire
          try {
            w.write(bytes, at);
          } catch (err) {
            f.localError = err;
            throw err;
          }
        },
      };
      into = sink;
    } else {
      // End-game buffers are reused: at most holders × streams of them, however long the file.
      f.buffer = pool.pop() ?? Buffer.allocUnsafeSlow(manifest.pieceSize);
      into = f.buffer.subarray(0, length);
    }
    const signal = AbortSignal.any([f.controller.signal, AbortSignal.timeout(requestTimeoutMs)]);
    const r = await s.client.get(`/pieces/${manifest.sha256}/${f.index}`, { authorization: `Bearer ${ticket}` }, into, (n) => {
      s.bytes += n;
      bytesReceived += n;
      rateBytes += n;
    }, signal).catch((err: unknown) => {
      if (isShoalError(err, ErrorCode.HASH_MISMATCH)) throw new ShoalError(ErrorCode.HASH_MISMATCH, `holder ${s.holder.id} sent more than piece ${f.index} holds`);
      throw err;
    });
    if (r.status !== 200) {
      const code = errorCode(r.text) ?? ErrorCode.PEER_FAILED;
      throw new ShoalError(code, `holder ${s.holder.id} answered ${r.status} for piece ${f.index}`);
    }
    if (r.length !== length) throw new ShoalError(ErrorCode.PEER_FAILED, `holder ${s.holder.id} sent ${r.length} of ${length} bytes of piece ${f.index}`);
    return writer ? { writer, bytes: null } : { writer: null, bytes: into as Buffer };
  };

  avail.fill(states.length);
  log.debug('download starting', { sha256: manifest.sha256, missing: want.size, pieces: count, holders: states.length, streams });
  try {
    if (want.size > 0) {
      for (const s of states) void loadHave(s);
      haveTimer = setInterval(() => {
        for (const s of live()) if (s.ready && s.have && (!s.have.complete || s.hints)) void loadHave(s);
      }, Math.max(100, options.haveRefreshMs ?? 1000));
      // Re-run the scheduler now and then: end-game duplicates become due with time, not with events.
      tickTimer = setInterval(pump, 250);
      await done;
    }
    emitProgress(true);
    return { piecesFetched, piecesResumed, bytesReceived, bytesPerHolder: perHolder(), badHolders, droppedHolders };
  } finally {
    finished = true;
    options.signal?.removeEventListener('abort', onAbort);
    if (progressTimer) clearTimeout(progressTimer);
    if (stallTimer) clearTimeout(stallTimer);
    if (haveTimer) clearInterval(haveTimer);
    if (tickTimer) clearInterval(tickTimer);
    for (const s of states) if (s.timer) clearTimeout(s.timer);
    // Requests were aborted by finish(); wait for them so that no piece is written after we return.
    for (let round = 0; running.size > 0 && round < 100; round++) await Promise.allSettled([...running]);
    for (const s of states) s.client.close();
  }
}

function dedupe(holders: Holder[]): Holder[] {
  const seen = new Set<string>();
  return holders.filter((h) => (seen.has(h.id) ? false : (seen.add(h.id), true)));
}

function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ShoalError(ErrorCode.BAD_REQUEST, `bad holder URL ${url}`);
  }
  if (u.protocol !== 'https:') throw new ShoalError(ErrorCode.BAD_REQUEST, `holder URL must be https: ${url}`);
  return url.replace(/\/+$/, '');
}

function errorCode(text: string): ErrorCodeT | null {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' && code in ErrorCode ? (code as ErrorCodeT) : null;
  } catch {
    return null;
  }
}
