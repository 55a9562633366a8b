/**
 * The WebSocket hub at `/api/v1/events`. One socket per agent and per open web UI or CLI watcher.
 *
 * Authentication: the bearer token from the `Authorization` header (agents, CLI), or — since browsers cannot
 * set headers on a WebSocket — from the `Sec-WebSocket-Protocol` header as the subprotocol `bearer.<token>`,
 * which the hub then echoes back. Tokens are never logged.
 *
 * A socket becomes an agent when it sends `hello`; otherwise it is a viewer and receives `event`s filtered to
 * what its user may see (members see their groups, admins see everything, presence is for admins).
 * Frames over Limits.wsMessageBytes or malformed ones close the socket (WsClose codes); the server keeps going.
 */
import websocketPlugin from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { hashToken } from '../crypto/token.ts';
import type { Logger } from '../logger.ts';
import { Limits } from '../protocol/limits.ts';
import {
  WsClose,
  decodeClientMessage,
  encodeMessage,
  wsBearerPrefix,
  type ClientMessage,
  type HelloMsg,
  type ServerMessage,
  type ShoalEvent,
} from '../protocol/events.ts';
import type { Store, UserRow } from '../store/store.ts';
import type { DeliveryService } from './deliveries/delivery-service.ts';
import type { LiveAgent, Presence } from './presence.ts';

/** Path of the events socket. */
export const eventsPath = '/api/v1/events';

export interface HubDeps {
  store: Store;
  logger: Logger;
  presence: Presence;
  deliveries: DeliveryService;
  /** Handles multicast status reports (wired by the multicast service later). */
  onMulticastStatus?: (agent: LiveAgent, msg: Extract<ClientMessage, { type: 'multicast-status' }>) => void;
}

export interface HubOptions {
  heartbeatMs: number;
  /** Ticket-signing public key as GET /info shows it. */
  publicKey: string;
  /** Version string agents are told (informational). */
  serverVersion?: string;
}

export interface Hub {
  /** Mounts the WebSocket route (and the websocket plugin when not yet there). */
  register(app: FastifyInstance): Promise<void>;
  /** Sends an event to every viewer allowed to see it. */
  publish(event: ShoalEvent): void;
  /** Closes every socket. */
  stop(): Promise<void>;
  /** Number of open sockets (agents + viewers). */
  connections(): number;
}

interface Conn {
  socket: WebSocket;
  user: UserRow;
  agent?: LiveAgent;
  /** Serializes the handling of one socket's messages, so progress never overtakes completion. */
  chain: Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    shoalWsUser?: UserRow;
  }
}

function tokenOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.toLowerCase().startsWith('bearer ')) return auth.slice(7).trim();
  const proto = req.headers['sec-websocket-protocol'];
  if (typeof proto === 'string') {
    for (const p of proto.split(',').map((s) => s.trim()))
      if (p.startsWith(wsBearerPrefix)) return p.slice(wsBearerPrefix.length);
  }
  return undefined;
}

/** Creates the hub; call register(app) before the server listens. */
export function createHub(deps: HubDeps, options: HubOptions): Hub {
  const { store, presence, deliveries } = deps;
  const log = deps.logger.child('coordinator:hub');
  const conns = new Set<Conn>();

  async function authenticate(token: string | undefined): Promise<UserRow | undefined> {
    if (!token || token.length > 512) return undefined;
    const session = await store.getSession(hashToken(token));
    if (!session || session.expiresAt <= Date.now()) return undefined;
    return store.getUserById(session.userId);
  }

  function send(conn: Conn, msg: ServerMessage): void {
    if (conn.socket.readyState !== conn.socket.OPEN) throw new Error('socket not open');
    conn.socket.send(encodeMessage(msg));
  }

  async function maySee(user: UserRow, event: ShoalEvent): Promise<boolean> {
    if (user.isAdmin) return true;
    switch (event.kind) {
      case 'presence':
        return false;
      case 'group':
        return true;
      case 'join-decision':
      case 'membership':
        if (event.username === user.username) return true;
        break;
      case 'recipient':
        if (event.group === null) return event.username === user.username || event.from === user.username;
        break;
      case 'delivery':
        if (event.group === null) return event.from === user.username;
        break;
      case 'catalogue':
        break;
    }
    const group = event.group ? await store.getGroupByName(event.group) : undefined;
    return group !== undefined && (await store.getMembership(group.id, user.id)) !== undefined;
  }

  async function hello(conn: Conn, msg: HelloMsg, address: string): Promise<void> {
    if (conn.agent) return; // a second hello on the same socket changes nothing
    const known = await store.getAgent(msg.agentId);
    if (known && known.userId !== conn.user.id) {
      log.warn('agent id claimed by another user', { agentId: msg.agentId, user: conn.user.username });
      conn.socket.close(WsClose.FORBIDDEN, 'agent id belongs to another user');
      return;
    }
    const now = Date.now();
    const agent: LiveAgent = {
      agentId: msg.agentId,
      userId: conn.user.id,
      username: conn.user.username,
      name: msg.name,
      version: msg.version,
      address,
      listenUrl: msg.listenUrl,
      fingerprint: msg.fingerprint,
      since: now,
      lastSeen: now,
      receiving: new Map(),
      send: (m) => send(conn, m),
      close: (code, reason) => conn.socket.close(code, reason),
    };
    conn.agent = agent;
    // Only files the user may fetch: a holder is handed other members' tickets, so claiming a file one cannot
    // read would be a way to collect tickets for it.
    if (msg.holdings.length) {
      const allowed = await deliveries.fetchable(conn.user.id);
      for (const sha of msg.holdings) if (allowed.has(sha)) await store.setHolder(sha, agent.agentId, true);
    }
    await presence.connect(agent);
    await deliveries.agentOnline(agent);
  }

  async function onMessage(conn: Conn, msg: ClientMessage, address: string): Promise<void> {
    if (conn.agent) presence.touch(conn.agent.agentId);
    switch (msg.type) {
      case 'hello':
        return hello(conn, msg, address);
      case 'heartbeat':
        return;
      case 'pong':
        if (conn.agent) presence.onPong(conn.agent.agentId, msg.probeId);
        return;
      case 'progress':
      case 'completed':
      case 'failed':
        if (conn.agent) await deliveries.onAgentMessage(conn.agent, msg);
        return;
      case 'multicast-status':
        if (conn.agent) deps.onMulticastStatus?.(conn.agent, msg);
        return;
    }
  }

  function attach(socket: WebSocket, req: FastifyRequest): void {
    const user = req.shoalWsUser!;
    const conn: Conn = { socket, user, chain: Promise.resolve() };
    conns.add(conn);
    const address = req.ip;
    log.debug('socket open', { user: user.username, address });
    try {
      send(conn, {
        type: 'welcome',
        user: { id: user.id, username: user.username, isAdmin: user.isAdmin },
        heartbeatMs: options.heartbeatMs,
        publicKey: options.publicKey,
      });
    } catch {
      // closed already
    }
    socket.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        socket.close(WsClose.MALFORMED, 'binary frames are not accepted');
        return;
      }
      const decoded = decodeClientMessage(bytes);
      if (!decoded.ok) {
        log.warn('closing a socket after a bad message', { user: user.username, reason: decoded.reason });
        try {
          send(conn, {
            type: 'error',
            code: decoded.close === WsClose.TOO_LARGE ? 'PAYLOAD_TOO_LARGE' : 'MALFORMED_MESSAGE',
            message: decoded.reason,
          });
        } catch {
          // closing anyway
        }
        socket.close(decoded.close, decoded.reason.slice(0, 120));
        return;
      }
      conn.chain = conn.chain
        .then(() => onMessage(conn, decoded.msg, address))
        .catch((err) =>
          log.error('message handling failed', { user: user.username, type: decoded.msg.type, err }),
        );
    });
    socket.on('close', () => {
      conns.delete(conn);
      const agent = conn.agent;
      if (agent) {
        conn.chain = conn.chain
          .then(async () => {
            // presence's onChange hands the agent's deliveries back to the scheduler.
            if (presence.get(agent.agentId) === agent) await presence.disconnect(agent, 'socket closed');
          })
          .catch((err) => log.error('disconnect handling failed', { err }));
      }
    });
    socket.on('error', (err) => log.debug('socket error', { user: user.username, err }));
  }

  return {
    async register(app) {
      if (!app.hasDecorator('websocketServer')) {
        await app.register(websocketPlugin, {
          options: {
            // A little slack over the limit so the decoder, not ws, reports a clear code for most oversize frames.
            maxPayload: Limits.wsMessageBytes + 1024,
            handleProtocols: (protocols) => {
              for (const p of protocols) if (p.startsWith(wsBearerPrefix)) return p;
              return false;
            },
          },
        });
      }
      app.get(
        eventsPath,
        {
          websocket: true,
          preValidation: async (req, reply) => {
            const user = await authenticate(tokenOf(req));
            if (!user) {
              await reply
                .code(401)
                .send({ error: { code: 'UNAUTHENTICATED', message: 'a valid bearer token is required' } });
              return;
            }
            req.shoalWsUser = user;
          },
        },
        (socket, req) => attach(socket, req),
      );
    },

    publish(event) {
      for (const conn of conns) {
        if (
          conn.agent &&
          event.kind !== 'catalogue' &&
          event.kind !== 'membership' &&
          event.kind !== 'join-decision'
        )
          continue;
        void deliverEvent(conn, event);
      }
    },

    async stop() {
      for (const conn of [...conns]) conn.socket.close(WsClose.GOING_AWAY, 'coordinator stopping');
      await Promise.allSettled([...conns].map((c) => c.chain));
    },

    connections: () => conns.size,
  };

  async function deliverEvent(conn: Conn, event: ShoalEvent): Promise<void> {
    try {
      if (await maySee(conn.user, event)) send(conn, { type: 'event', event });
    } catch {
      // A viewer that went away misses the event; it refetches when it reconnects.
    }
  }
}
