/**
 * The coordinator as a piece holder: `GET /pieces/<sha256>/<index>` serves one piece of a stored blob to
 * whoever shows a valid ticket for that file (header `x-shoal-ticket`, or `Authorization: Ticket <t>`).
 * On top of the ticket's signature the coordinator, unlike an agent, can check membership live, so a
 * member removed a second ago is refused even with a ticket still valid.
 */
import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { verifyTicket } from '../../crypto/tickets.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { CoordinatorContext } from '../context.ts';
import type { DeliveryService } from '../deliveries/delivery-service.ts';
import { errorBody } from '../http-errors.ts';

/** Path of the piece route (outside /api/v1: agents serve the same path). */
export const piecePath = '/pieces/:sha256/:index';

/** The ticket of a piece request, from `x-shoal-ticket` or `Authorization: Ticket …`. */
export function ticketOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const h = headers['x-shoal-ticket'];
  if (typeof h === 'string' && h) return h;
  const auth = headers.authorization;
  if (typeof auth === 'string' && /^ticket\s+/i.test(auth)) return auth.replace(/^ticket\s+/i, '').trim();
  return undefined;
}

/** Registers the coordinator's piece server. */
export function registerPieceRoutes(app: FastifyInstance, ctx: CoordinatorContext, deps: { deliveries: DeliveryService }): void {
  // (user, file) → allowed; cleared on every membership or catalogue change so removal bites at once.
  const allowed = new Map<string, boolean>();
  ctx.events.subscribe(() => allowed.clear());

  app.get<{ Params: { sha256: string; index: string } }>(piecePath, async (req, reply) => {
    const { sha256, index } = req.params;
    const fail = (err: ShoalError) => {
      const status = err.code === ErrorCode.TICKET_EXPIRED || err.code === ErrorCode.TICKET_INVALID ? 401 : err.code === ErrorCode.FORBIDDEN ? 403 : err.code === ErrorCode.PIECE_NOT_FOUND ? 404 : 400;
      return reply.code(status).send(errorBody(err));
    };
    if (!/^[0-9a-f]{64}$/.test(sha256) || !/^\d{1,6}$/.test(index)) return fail(new ShoalError(ErrorCode.BAD_REQUEST, 'bad piece address'));
    const ticket = ticketOf(req.headers);
    if (!ticket) return fail(new ShoalError(ErrorCode.TICKET_INVALID, 'a ticket is required'));
    let user: string;
    try {
      user = verifyTicket(ctx.ticketKeys.publicKey, ticket, { sha256 }).user;
    } catch (err) {
      if (err instanceof ShoalError) return fail(err);
      throw err;
    }
    const key = `${user}:${sha256}`;
    let ok = allowed.get(key);
    if (ok === undefined) {
      ok = await deps.deliveries.mayFetch(user, sha256);
      if (allowed.size > 10_000) allowed.clear();
      allowed.set(key, ok);
    }
    if (!ok) return fail(new ShoalError(ErrorCode.FORBIDDEN, 'no longer allowed to fetch this file'));
    const blob = await ctx.store.getBlob(sha256);
    const i = Number(index);
    if (!blob || i >= blob.pieces.length || !(await ctx.blobs.has(sha256))) return fail(new ShoalError(ErrorCode.PIECE_NOT_FOUND, 'no such piece here'));
    const start = i * blob.pieceSize;
    const length = Math.min(blob.pieceSize, blob.size - start);
    reply.header('content-type', 'application/octet-stream');
    reply.header('content-length', String(length));
    reply.header('cache-control', 'no-store');
    if (length === 0) return reply.send(Buffer.alloc(0));
    return reply.send(createReadStream(ctx.blobs.pathOf(sha256), { start, end: start + length - 1 }));
  });
}
