/**
 * Wires the agent-facing half of the coordinator into its Fastify app: presence, the delivery scheduler,
 * the WebSocket hub, their REST routes and the piece server. Membership and group events from the
 * coordinator's event bus become offers and cancellations; everything starts when the app is ready and
 * stops before it closes.
 */
import type { FastifyInstance } from 'fastify';
import { signTicket, publicKeyToRaw } from '../../crypto/tickets.ts';
import { Limits } from '../../protocol/limits.ts';
import type { ShoalEvent } from '../../protocol/events.ts';
import type { CoordinatorContext, CoordinatorEvent } from '../context.ts';
import { createHub, type Hub } from '../hub.ts';
import { createPresence, type Presence } from '../presence.ts';
import { registerDeliveryRoutes } from '../routes/deliveries.ts';
import { registerPieceRoutes, type PieceRouteStats } from '../routes/pieces.ts';
import { registerPresenceRoutes } from '../routes/presence.ts';
import { createDeliveryService, type DeliveryService } from './delivery-service.ts';
import { createMulticastService, type MulticastService } from './multicast-service.ts';

export interface AgentPlaneOptions {
  /** Agent heartbeat interval, ms (default SHOAL_HEARTBEAT_MS or Limits.heartbeatMs). */
  heartbeatMs?: number;
  /** First retry delay after a failed delivery, ms (default SHOAL_RETRY_MS or 5000). */
  retryBaseMs?: number;
  /** How long `check` waits for an agent, ms (default 5000, or SHOAL_CHECK_TIMEOUT_MS). */
  checkTimeoutMs?: number;
  /** Upload cap per piece stream, bytes/s (default none, or SHOAL_PIECE_STREAM_RATE): simulates a slow uplink. */
  pieceStreamRate?: number;
  /** Multicast for group deliveries with several members online (default on; SHOAL_MULTICAST=off turns it off). */
  multicast?: boolean;
  /** Multicast rate ceiling, bits/s (default SHOAL_MULTICAST_RATE_MBIT or 200 Mbit/s). */
  multicastRateBps?: number;
  /** Interface address to send multicast from (default SHOAL_MULTICAST_INTERFACE, else the kernel's route). */
  multicastInterface?: string;
  /** Floor of the adaptive multicast rate, bits/s (default ceiling / 8). */
  multicastMinRateBps?: number;
  /** Multicast TTL (default 1). */
  multicastTtl?: number;
  /** Most multicast passes (default SHOAL_MULTICAST_MAX_PASSES, else 8). */
  multicastMaxPasses?: number;
}

/** The running parts, for the multicast service and tests. */
export interface AgentPlane {
  presence: Presence;
  deliveries: DeliveryService;
  hub: Hub;
  pieces: PieceRouteStats;
  multicast: MulticastService | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    agentPlane?: AgentPlane;
  }
}

const envMs = (name: string): number | undefined => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : undefined;
};

/** Converts a coordinator bus event into what viewers receive. */
function toShoalEvent(e: CoordinatorEvent): ShoalEvent | undefined {
  switch (e.type) {
    case 'catalogue-changed':
      return { kind: 'catalogue', group: e.group, action: e.change, fileId: e.fileId };
    case 'membership-changed':
      return e.change === 'role'
        ? undefined
        : { kind: 'membership', group: e.group, username: e.username, action: e.change };
    case 'join-requested':
      return { kind: 'join-decision', group: e.group, username: e.username, state: 'pending' };
    case 'join-decided':
      return { kind: 'join-decision', group: e.group, username: e.username, state: e.state };
    case 'group-created':
      return { kind: 'group', group: e.group, action: 'created' };
    case 'group-deleted':
      return { kind: 'group', group: e.group, action: 'deleted' };
    default:
      return undefined;
  }
}

/** Registers presence, deliveries, the hub and the piece server on `app`. */
export async function registerAgentPlane(
  app: FastifyInstance,
  ctx: CoordinatorContext,
  options: AgentPlaneOptions = {},
): Promise<AgentPlane> {
  const logger = ctx.logger;
  // Explicit options win, then the coordinator's options, then the environment (kept for tests and scripts).
  const mo = ctx.options.multicast ?? {};
  const heartbeatMs =
    options.heartbeatMs ?? ctx.options.heartbeatMs ?? envMs('SHOAL_HEARTBEAT_MS') ?? Limits.heartbeatMs;
  const publicKey = publicKeyToRaw(ctx.ticketKeys.publicKey);
  // presence → deliveries → hub: late binding through this holder keeps each factory simple.
  const late: { hub?: Hub; deliveries?: DeliveryService } = {};
  const publish = (event: ShoalEvent) => late.hub?.publish(event);
  const presence = createPresence(
    {
      store: ctx.store,
      logger,
      onChange: (a, online) => {
        publish({
          kind: 'presence',
          group: null,
          agentId: a.agentId,
          username: a.username,
          name: a.name,
          online,
        });
        if (!online) void late.deliveries?.agentOffline(a);
      },
    },
    { heartbeatMs },
  );
  const multicastOn = options.multicast ?? mo.enabled ?? process.env.SHOAL_MULTICAST !== 'off';
  const rateMbit = envMs('SHOAL_MULTICAST_RATE_MBIT');
  const multicast = multicastOn
    ? createMulticastService(
        { logger },
        {
          rateBps: options.multicastRateBps ?? mo.rateBps ?? (rateMbit ? rateMbit * 1_000_000 : undefined),
          minRateBps: options.multicastMinRateBps ?? mo.minRateBps,
          interface:
            options.multicastInterface ??
            mo.interface ??
            (process.env.SHOAL_MULTICAST_INTERFACE || undefined),
          ttl: options.multicastTtl ?? mo.ttl,
          maxPasses: options.multicastMaxPasses ?? mo.maxPasses ?? envMs('SHOAL_MULTICAST_MAX_PASSES'),
        },
      )
    : undefined;
  const deliveries = createDeliveryService(
    {
      store: ctx.store,
      logger,
      presence,
      signTicket: (c) =>
        signTicket(ctx.ticketKeys.privateKey, { user: c.userId, sha256: c.sha256, expiresAt: c.expiresAt }),
      publish,
      multicast,
      blobPath: (sha256) => ctx.blobs.pathOf(sha256),
    },
    { retryBaseMs: options.retryBaseMs ?? envMs('SHOAL_RETRY_MS'), ticketTtlMs: Limits.ticketTtlMs },
  );
  const hub = createHub(
    {
      store: ctx.store,
      logger,
      presence,
      deliveries,
      onMulticastStatus: (a, m) => multicast?.onStatus(a, m),
    },
    { heartbeatMs, publicKey, serverVersion: ctx.version },
  );
  late.deliveries = deliveries;
  late.hub = hub;
  await hub.register(app);

  registerDeliveryRoutes(app, ctx, { deliveries, multicast });
  registerPresenceRoutes(app, ctx, {
    presence,
    checkTimeoutMs: options.checkTimeoutMs ?? envMs('SHOAL_CHECK_TIMEOUT_MS'),
  });
  const pieces = registerPieceRoutes(
    app,
    ctx,
    { deliveries },
    { streamRateBytesPerSec: options.pieceStreamRate ?? envMs('SHOAL_PIECE_STREAM_RATE') },
  );

  const d = deliveries;
  const unsubscribe = ctx.events.subscribe((e) => {
    const shown = toShoalEvent(e);
    if (shown) publish(shown);
    void (async () => {
      if (e.type === 'membership-changed' && e.change !== 'role') {
        const [group, user] = await Promise.all([
          ctx.store.getGroupByName(e.group),
          ctx.store.getUserByName(e.username),
        ]);
        if (!group || !user) return;
        if (e.change === 'added') await d.memberAdded(group.id, user.id);
        else await d.memberRemoved(group.id, user.id);
      } else if (e.type === 'group-deleted') {
        await d.cancelOrphans();
      }
    })().catch((err) => logger.warn('event handling failed', { type: e.type, err }));
  });

  let started = false;
  app.addHook('onReady', async () => {
    presence.start();
    await d.start();
    started = true;
  });
  app.addHook('preClose', async () => {
    unsubscribe();
    if (!started) return;
    await d.stop();
    await hub.stop();
    await presence.stop();
  });

  const plane: AgentPlane = { presence, deliveries: d, hub, pieces, multicast };
  app.decorate('agentPlane', plane);
  return plane;
}
