/**
 * Presence: which agents are connected right now. The live WebSocket is the source of truth; the agents
 * table mirrors it (online flag, since, address, version) so other coordinators and restarts see it too.
 * An agent silent for 3 heartbeat intervals is dropped and its socket closed, so a frozen machine or a
 * pulled cable disappears from the list within 3 intervals. Probes are round trips over the same socket.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import type { ServerMessage } from '../protocol/events.ts';
import { WsClose } from '../protocol/events.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';

/** What an agent is receiving now, as presence shows it. */
export interface Receiving {
  deliveryId: string;
  fileName: string;
  bytes: number;
  size: number;
  /** bytes/s */
  rate: number;
  transport: string;
}

/** One connected agent. `send` and `close` talk to its socket. */
export interface LiveAgent {
  agentId: string;
  userId: string;
  username: string;
  name: string;
  version: string;
  address: string;
  listenUrl: string | null;
  fingerprint: string | null;
  /** Epoch ms of this connection. */
  since: number;
  /** Epoch ms of the last message. */
  lastSeen: number;
  receiving: Map<string, Receiving>;
  send(msg: ServerMessage): void;
  close(code: number, reason: string): void;
}

export interface PresenceDeps {
  store: Store;
  logger: Logger;
  /** Called after an agent came online or went offline (state already stored). */
  onChange?: (agent: LiveAgent, online: boolean) => void;
}

export interface PresenceOptions {
  /** Heartbeat interval, ms; an agent silent for 3 intervals is gone. */
  heartbeatMs: number;
}

export interface Presence {
  start(): void;
  stop(): Promise<void>;
  /** Registers a connected agent (replacing an older connection with the same id). */
  connect(agent: LiveAgent): Promise<void>;
  /** Records that the agent spoke (any message). */
  touch(agentId: string): void;
  /** Drops an agent whose socket closed; a no-op when `agent` is no longer the live connection. */
  disconnect(agent: LiveAgent, reason: string): Promise<void>;
  get(agentId: string): LiveAgent | undefined;
  /** Live agents, optionally of some users only. */
  list(filter?: { userIds?: Set<string> }): LiveAgent[];
  /** Live agents of one user. */
  ofUser(userId: string): LiveAgent[];
  /** Round trip to an agent: resolves with the rtt in ms or throws NOT_ANSWERING after `timeoutMs`. */
  probe(agentId: string, timeoutMs: number, signal?: AbortSignal): Promise<number>;
  /** Called by the hub when a pong arrives. */
  onPong(agentId: string, probeId: string): void;
}

/** Creates the presence service. */
export function createPresence(deps: PresenceDeps, options: PresenceOptions): Presence {
  const log = deps.logger.child('coordinator:presence');
  const live = new Map<string, LiveAgent>();
  const probes = new Map<string, { agentId: string; sentAt: number; resolve: (rtt: number) => void }>();
  let sweeper: NodeJS.Timeout | undefined;
  const pendingWrites = new Set<Promise<unknown>>();

  const track = <T>(p: Promise<T>): Promise<T> => {
    pendingWrites.add(p);
    void p.finally(() => pendingWrites.delete(p)).catch(() => undefined);
    return p;
  };

  const storeRow = (a: LiveAgent, online: boolean) =>
    track(
      deps.store.upsertAgent({
        id: a.agentId,
        userId: a.userId,
        name: a.name,
        version: a.version,
        address: a.address,
        listenUrl: a.listenUrl,
        connectedAt: a.since,
        lastSeen: a.lastSeen,
        online,
      }),
    );

  const drop = async (a: LiveAgent, reason: string) => {
    if (live.get(a.agentId) !== a) return;
    live.delete(a.agentId);
    log.info('agent offline', { agentId: a.agentId, user: a.username, reason });
    try {
      await storeRow(a, false);
    } catch (err) {
      log.warn('could not store agent offline', { agentId: a.agentId, err });
    }
    deps.onChange?.(a, false);
  };

  const sweep = () => {
    const deadline = Date.now() - 3 * options.heartbeatMs;
    for (const a of [...live.values()]) {
      if (a.lastSeen < deadline) {
        a.close(WsClose.GOING_AWAY, 'no heartbeat');
        void drop(a, 'no heartbeat');
      }
    }
  };

  return {
    start() {
      if (sweeper) return;
      sweeper = setInterval(sweep, Math.max(50, Math.floor(options.heartbeatMs / 2)));
      sweeper.unref();
    },
    async stop() {
      if (sweeper) clearInterval(sweeper);
      sweeper = undefined;
      for (const a of [...live.values()]) {
        a.close(WsClose.GOING_AWAY, 'coordinator stopping');
        await drop(a, 'coordinator stopping');
      }
      await Promise.allSettled([...pendingWrites]);
    },
    async connect(a) {
      const old = live.get(a.agentId);
      if (old && old !== a) {
        live.delete(a.agentId);
        old.close(WsClose.REPLACED, 'replaced by a newer connection');
      }
      live.set(a.agentId, a);
      await storeRow(a, true);
      log.info('agent online', { agentId: a.agentId, user: a.username, name: a.name, address: a.address });
      deps.onChange?.(a, true);
    },
    touch(agentId) {
      const a = live.get(agentId);
      if (a) a.lastSeen = Date.now();
    },
    disconnect: (a, reason) => drop(a, reason),
    get: (agentId) => live.get(agentId),
    list(filter) {
      const all = [...live.values()];
      return filter?.userIds ? all.filter((a) => filter.userIds!.has(a.userId)) : all;
    },
    ofUser: (userId) => [...live.values()].filter((a) => a.userId === userId),
    probe(agentId, timeoutMs, signal) {
      const a = live.get(agentId);
      if (!a)
        return Promise.reject(new ShoalError(ErrorCode.AGENT_NOT_FOUND, `agent ${agentId} is not connected`));
      const probeId = randomUUID();
      return new Promise<number>((resolve, reject) => {
        const finish = (err?: Error, rtt?: number) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          probes.delete(probeId);
          if (err) reject(err);
          else resolve(rtt!);
        };
        const onAbort = () => finish(new ShoalError(ErrorCode.ABORTED, 'probe aborted'));
        const timer = setTimeout(
          () =>
            finish(
              new ShoalError(
                ErrorCode.NOT_ANSWERING,
                `agent ${a.name} did not answer within ${timeoutMs} ms`,
                { agentId },
              ),
            ),
          timeoutMs,
        );
        signal?.addEventListener('abort', onAbort, { once: true });
        probes.set(probeId, { agentId, sentAt: performance.now(), resolve: (rtt) => finish(undefined, rtt) });
        try {
          a.send({ type: 'probe', probeId });
        } catch (err) {
          finish(
            new ShoalError(ErrorCode.NOT_ANSWERING, 'could not reach the agent', { agentId }, { cause: err }),
          );
        }
      });
    },
    onPong(agentId, probeId) {
      const p = probes.get(probeId);
      if (p && p.agentId === agentId) p.resolve(Math.round((performance.now() - p.sentAt) * 100) / 100);
    },
  };
}
