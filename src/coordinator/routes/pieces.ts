/**
 * The coordinator as a piece holder: mounts the swarm's piece handler (`GET /pieces/<sha256>/<index>` and
 * `GET /pieces/<sha256>`, ticket as `Authorization: Bearer <ticket>`) over the stored blobs. On top of the
 * ticket's signature the coordinator, unlike an agent, can check membership live, so a member removed a
 * moment ago is refused even with a ticket that has not expired yet.
 */
import type { FastifyInstance } from 'fastify';
import { verifyTicket } from '../../crypto/tickets.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import {
  createPieceBufferPool,
  createSendCounter,
  createTicketCache,
  handlePieceRequest,
  type PieceHandlerDeps,
  type PieceHandlerOptions,
} from '../../transfer/swarm/piece-server.ts';
import type { BlobRow } from '../../store/store.ts';
import type { PieceSource } from '../../transfer/swarm/piece-source.ts';
import type { CoordinatorContext } from '../context.ts';
import type { DeliveryService } from '../deliveries/delivery-service.ts';
import { errorBody } from '../http-errors.ts';

/** What the coordinator's piece server has handed out since start. */
export interface PieceRouteStats {
  /** Bytes of the file `sha256` written to sockets (an upper bound of what peers received). */
  servedBytes(sha256: string): number;
}

/** Registers the coordinator's piece server under /pieces. */
export function registerPieceRoutes(
  app: FastifyInstance,
  ctx: CoordinatorContext,
  deps: { deliveries: DeliveryService },
  options: { streamRateBytesPerSec?: number } = {},
): PieceRouteStats {
  const { store, blobs } = ctx;
  // (user, file) → allowed; cleared on every membership or catalogue change so a removal bites at once.
  const allowed = new Map<string, boolean>();
  // Blob rows are immutable; caching them spares two database reads and a stat per piece request (the
  // coordinator is the seed every receiver starts from). Cleared with `allowed` on every change.
  const blobCache = new Map<string, BlobRow>();
  ctx.events.subscribe(() => {
    allowed.clear();
    blobCache.clear();
  });
  const blobOf = async (sha256: string): Promise<BlobRow | undefined> => {
    const cached = blobCache.get(sha256);
    if (cached) return cached;
    const blob = await store.getBlob(sha256);
    if (!blob || !(await blobs.has(sha256))) return undefined;
    if (blobCache.size >= 1000) blobCache.clear();
    blobCache.set(sha256, blob);
    return blob;
  };

  const source: PieceSource = {
    async open(sha256) {
      const blob = await blobOf(sha256);
      if (!blob) return null;
      return {
        manifest: { size: blob.size, sha256, pieceSize: blob.pieceSize, pieces: blob.pieces },
        path: blobs.pathOf(sha256),
      };
    },
    async has(sha256, index) {
      const blob = await blobOf(sha256);
      return !!blob && Number.isInteger(index) && index >= 0 && index < blob.pieces.length;
    },
  };
  const served = new Map<string, number>();
  const handlerDeps: PieceHandlerDeps = {
    logger: ctx.logger.child('coordinator:pieces'),
    source,
    publicKey: ctx.ticketKeys.publicKey,
    onServed: (e) => served.set(e.sha256, (served.get(e.sha256) ?? 0) + e.bytes),
  };
  const rate = options.streamRateBytesPerSec;
  // The `sent` hint lets receivers ask the coordinator for different pieces; cached tickets and whole-piece
  // reads cut its CPU per piece (it is the seed every receiver starts from).
  const handlerOptions: PieceHandlerOptions = {
    sendCounter: createSendCounter(),
    ticketCache: createTicketCache(),
    bufferPool: createPieceBufferPool(),
  };

  const refuse = (reply: import('fastify').FastifyReply, status: number, err: ShoalError) =>
    reply.code(status).send(errorBody(err));

  app.get('/pieces/*', async (req, reply) => {
    const sha256 = (req.url.split('?')[0].split('/')[2] ?? '').toLowerCase();
    const auth = req.headers.authorization;
    const ticket =
      typeof auth === 'string' && /^bearer\s+/i.test(auth)
        ? auth.replace(/^bearer\s+/i, '').trim()
        : undefined;
    if (ticket && /^[0-9a-f]{64}$/.test(sha256)) {
      let user: string | undefined;
      try {
        user = verifyTicket(ctx.ticketKeys.publicKey, ticket, { sha256 }).user;
      } catch {
        // The handler answers bad tickets with its own error.
      }
      if (user !== undefined) {
        const key = `${user}:${sha256}`;
        let ok = allowed.get(key);
        if (ok === undefined) {
          ok = await deps.deliveries.mayFetch(user, sha256);
          if (allowed.size > 10_000) allowed.clear();
          allowed.set(key, ok);
        }
        if (!ok)
          return refuse(
            reply,
            403,
            new ShoalError(ErrorCode.FORBIDDEN, 'no longer allowed to fetch this file'),
          );
      }
    }
    if (rate && rate > 0) {
      // An uplink cap per stream: hold each answer as long as its piece would take at that rate.
      const blob = /^[0-9a-f]{64}$/.test(sha256) ? await blobOf(sha256) : undefined;
      if (blob) await new Promise((r) => setTimeout(r, Math.min(60_000, (blob.pieceSize / rate) * 1000)));
    }
    reply.hijack();
    const handled = await handlePieceRequest(handlerDeps, req.raw, reply.raw, handlerOptions);
    if (!handled) {
      reply.raw.statusCode = 404;
      reply.raw.setHeader('content-type', 'application/json');
      reply.raw.end(JSON.stringify(errorBody(new ShoalError(ErrorCode.NOT_FOUND, 'no such route'))));
    }
  });
  return { servedBytes: (sha256) => served.get(sha256) ?? 0 };
}
