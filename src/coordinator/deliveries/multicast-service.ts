/**
 * Multicast transfers of the coordinator: when a group delivery has several members online, one sender
 * puts the file once on the group's address. Each accepted agent gets, over its WebSocket, the transfer id,
 * a fresh AES-256-GCM key, the address and the chunk size (`multicast-start`); between passes the sender
 * asks them what they lack (`multicast-status-request` → `multicast-status`). Agents that still lack
 * something when the sender stops, or never answered, are handed to the swarm by `onFinished`.
 * One transfer per group at a time (they share the address).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../../logger.ts';
import type { Manifest } from '../../protocol/api.ts';
import type { ClientMessage } from '../../protocol/events.ts';
import { createMulticastSender, defaultChunkSize } from '../../transfer/multicast/sender.ts';
import type { ReceiverStatus } from '../../transfer/multicast/receiver-status.ts';
import type { LiveAgent } from '../presence.ts';

type StatusMsg = Extract<ClientMessage, { type: 'multicast-status' }>;

export interface MulticastServiceOptions {
  /** Rate ceiling, bits/s on the wire (default 200 Mbit/s). */
  rateBps?: number;
  /** Floor of the adaptive rate, bits/s (default the sender's: ceiling / 8). */
  minRateBps?: number;
  /** Local interface address to send from (default: the kernel's route). */
  interface?: string;
  /** Multicast TTL (default 1). */
  ttl?: number;
  /** How long the sender waits for status answers after a pass, ms (default 3000). */
  statusTimeoutMs?: number;
  /** Most passes (default 8). */
  maxPasses?: number;
  /** How long to wait for receivers to join before the first pass, ms (default 3000). */
  joinTimeoutMs?: number;
  /** How long a finished transfer stays listed, ms (default 10 minutes). */
  keepFinishedMs?: number;
}

/** One receiver of a transfer, as `shoal transfers` shows it. */
export interface TransferReceiverView {
  agentId: string;
  username: string;
  name: string;
  /** joining → receiving → complete (all by multicast) | repair (left short: the swarm finishes it). */
  state: 'joining' | 'receiving' | 'complete' | 'repair';
  /** Bytes held according to the last status (chunks × chunk size, capped at the file size). */
  bytes: number;
  /** Chunks received and verified. */
  chunks: number;
  /** Loss rate of the last pass it reported, 0..1. */
  loss: number;
  /** Passes it answered a status request for. */
  passes: number;
}

/** One multicast transfer, running or recently finished. */
export interface TransferView {
  transferId: string;
  deliveryId: string;
  groupId: string;
  fileName: string;
  size: number;
  chunkSize: number;
  chunks: number;
  /** Rate ceiling the sender was given, bits/s. */
  rateBps: number;
  /** Rate floor the sender was given, bits/s. */
  minRateBps: number;
  /** Rate the last finished pass ran at, bits/s (null before the first pass ends). */
  currentRateBps: number | null;
  /** Passes started so far. */
  passes: number;
  maxPasses: number;
  state: 'joining' | 'sending' | 'done' | 'failed';
  startedAt: number;
  finishedAt: number | null;
  /** Bytes the sender put on the wire (known when done). */
  wireBytes: number | null;
  receivers: TransferReceiverView[];
}

export interface MulticastStart {
  transferId: string;
  key: Buffer;
  chunkSize: number;
}

export interface MulticastService {
  /** True when a transfer is running on this group. */
  busy(groupId: string): boolean;
  /**
   * Prepares a transfer of `manifest` (bytes at `path`) to `agents` on the group's address; `announce` is
   * called per agent with what it needs before the sender starts. Resolves once the sender stopped.
   */
  run(
    t: {
      groupId: string;
      deliveryId: string;
      address: string;
      port: number;
      manifest: Manifest;
      path: string;
      agents: LiveAgent[];
      /** Per-transfer ceiling/floor overrides (an operator's `push --rate`), bits/s. */
      rateBps?: number;
      minRateBps?: number;
    },
    announce: (agent: LiveAgent, start: MulticastStart) => boolean,
  ): Promise<{ complete: string[]; incomplete: string[] }>;
  /** A status report from an agent. */
  onStatus(agent: LiveAgent, msg: StatusMsg): void;
  /** Running and recently finished transfers (newest first), optionally of some groups only. */
  list(groupIds?: ReadonlySet<string>): TransferView[];
  /** The newest transfer of a delivery that included `agentId`, with that receiver's view. */
  receiverOf(
    deliveryId: string,
    agentId: string,
  ): { transfer: TransferView; receiver: TransferReceiverView } | undefined;
  /** Stops every running transfer. */
  stop(): Promise<void>;
}

interface Running {
  transferId: string;
  agents: Map<string, LiveAgent>;
  /** Status answers of the pass being collected, by agent id. */
  answers: Map<string, ReceiverStatus>;
  wake: (() => void) | null;
  controller: AbortController;
  /** True until the sender starts: status reports then mean "joined the group". */
  joining: boolean;
  ready: Set<string>;
  view: TransferView;
}

/** Creates the multicast side of the scheduler. */
export function createMulticastService(
  deps: { logger: Logger },
  options: MulticastServiceOptions = {},
): MulticastService {
  const log = deps.logger.child('coordinator:multicast');
  const byGroup = new Map<string, Running>();
  const byTransfer = new Map<string, Running>();
  const statusTimeoutMs = options.statusTimeoutMs ?? 3000;
  const joinTimeoutMs = options.joinTimeoutMs ?? 3000;
  const keepFinishedMs = options.keepFinishedMs ?? 10 * 60 * 1000;
  /** Every transfer's view, oldest first: running ones and those finished less than keepFinishedMs ago. */
  const views: TransferView[] = [];

  function prune(): void {
    const now = Date.now();
    for (let i = views.length - 1; i >= 0; i--) {
      const v = views[i];
      if (v.finishedAt !== null && (now - v.finishedAt > keepFinishedMs || views.length > 200))
        views.splice(i, 1);
    }
  }

  const copy = (v: TransferView): TransferView => ({ ...v, receivers: v.receivers.map((x) => ({ ...x })) });

  /** Waits until `done()` holds, `ms` passed or `signal` fired; onStatus wakes it up. */
  async function waitUntil(r: Running, done: () => boolean, ms: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        r.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      r.wake = null;
    }
  }

  return {
    busy: (groupId) => byGroup.has(groupId),

    async run(t, announce) {
      const transferId = randomUUID();
      const key = randomBytes(32);
      // Chunks must divide the piece size; a one-piece file is fine with any chunk size.
      let chunkSize = defaultChunkSize();
      if (t.manifest.pieces.length > 1)
        while (chunkSize > 1 && t.manifest.pieceSize % chunkSize !== 0) chunkSize = Math.floor(chunkSize / 2);
      const rateBps = t.rateBps ?? options.rateBps ?? 200_000_000;
      const minRateBps = Math.min(rateBps, t.minRateBps ?? options.minRateBps ?? rateBps / 8);
      const maxPasses = Math.max(1, options.maxPasses ?? 8);
      const r: Running = {
        transferId,
        agents: new Map(),
        answers: new Map(),
        wake: null,
        joining: true,
        ready: new Set(),
        controller: new AbortController(),
        view: {
          transferId,
          deliveryId: t.deliveryId,
          groupId: t.groupId,
          fileName: t.manifest.name,
          size: t.manifest.size,
          chunkSize,
          chunks: Math.max(1, Math.ceil(t.manifest.size / chunkSize)),
          rateBps,
          minRateBps,
          currentRateBps: null,
          passes: 0,
          maxPasses,
          state: 'joining',
          startedAt: Date.now(),
          finishedAt: null,
          wireBytes: null,
          receivers: [],
        },
      };
      let sender;
      try {
        sender = createSender();
      } catch (err) {
        log.warn('cannot start a multicast transfer; the swarm takes over', {
          deliveryId: t.deliveryId,
          err,
        });
        return { complete: [], incomplete: t.agents.map((a) => a.agentId) };
      }
      for (const a of t.agents) if (announce(a, { transferId, key, chunkSize })) r.agents.set(a.agentId, a);
      if (r.agents.size === 0) return { complete: [], incomplete: [] };
      r.view.receivers = [...r.agents.values()].map((a) => ({
        agentId: a.agentId,
        username: a.username,
        name: a.name,
        state: 'joining' as const,
        bytes: 0,
        chunks: 0,
        loss: 0,
        passes: 0,
      }));
      prune();
      views.push(r.view);
      byGroup.set(t.groupId, r);
      byTransfer.set(transferId, r);
      function createSender() {
        return createMulticastSender(
          {
            logger: log,
            collectStatus: async (marker, signal, pass) => {
              r.view.passes = Math.max(r.view.passes, pass);
              r.answers.clear();
              for (const a of r.agents.values()) {
                try {
                  // The agent waits for end-of-batch marker `marker` before it answers.
                  a.send({ type: 'multicast-status-request', transferId, pass: marker });
                } catch {
                  r.agents.delete(a.agentId);
                }
              }
              await waitUntil(r, () => r.answers.size >= r.agents.size, statusTimeoutMs, signal);
              return [...r.answers.values()];
            },
          },
          {
            address: t.address,
            port: t.port,
            interface: options.interface,
            ttl: options.ttl,
            chunkSize,
            rateBps,
            minRateBps,
            maxPasses,
            key,
            transferId,
            manifest: t.manifest,
            path: t.path,
          },
        );
      }
      log.info('multicast transfer starting', {
        transferId,
        deliveryId: t.deliveryId,
        receivers: r.agents.size,
        group: t.address,
        port: t.port,
      });
      try {
        // Datagrams sent before a receiver joined are lost: wait (bounded) until every agent says it joined.
        await waitUntil(r, () => r.ready.size >= r.agents.size, joinTimeoutMs, r.controller.signal);
        r.joining = false;
        r.view.state = 'sending';
        r.view.passes = 1;
        for (const v of r.view.receivers) v.state = 'receiving';
        const result = await sender.run(r.controller.signal);
        const answered = new Set(r.answers.keys());
        const incomplete = new Set(result.incomplete);
        // An agent that never answered the last status request is treated as incomplete.
        for (const id of r.agents.keys()) if (!answered.has(id)) incomplete.add(id);
        const complete = [...r.agents.keys()].filter((id) => !incomplete.has(id));
        const last = result.passes.at(-1);
        Object.assign(r.view, {
          state: 'done',
          passes: result.passes.length,
          currentRateBps: last?.rateBps ?? r.view.currentRateBps,
          wireBytes: result.wireBytes,
        });
        for (const v of r.view.receivers) {
          if (incomplete.has(v.agentId)) v.state = 'repair';
          else Object.assign(v, { state: 'complete', bytes: t.manifest.size, chunks: r.view.chunks });
        }
        log.info('multicast transfer done', {
          transferId,
          passes: result.passes.length,
          complete: complete.length,
          incomplete: incomplete.size,
          wireBytes: result.wireBytes,
        });
        return { complete, incomplete: [...incomplete] };
      } catch (err) {
        log.warn('multicast transfer failed; receivers go to the swarm', { transferId, err });
        r.view.state = 'failed';
        for (const v of r.view.receivers) v.state = 'repair';
        return { complete: [], incomplete: [...r.agents.keys()] };
      } finally {
        r.view.finishedAt = Date.now();
        byGroup.delete(t.groupId);
        byTransfer.delete(transferId);
      }
    },

    onStatus(agent, msg) {
      const r = byTransfer.get(msg.transferId);
      if (!r || !r.agents.has(agent.agentId)) return;
      if (r.joining) {
        r.ready.add(agent.agentId);
        r.wake?.();
        return;
      }
      r.answers.set(agent.agentId, {
        receiverId: agent.agentId,
        missing: msg.missing,
        partial: msg.partial,
        received: msg.received,
        lossRate: msg.lossRate,
        overloadRate: msg.overloadRate,
      });
      const v = r.view.receivers.find((x) => x.agentId === agent.agentId);
      if (v) {
        const chunks = Math.min(r.view.chunks, msg.received);
        Object.assign(v, {
          chunks,
          bytes: Math.min(r.view.size, chunks * r.view.chunkSize),
          loss: msg.lossRate,
          passes: v.passes + 1,
        });
      }
      r.wake?.();
    },

    list(groupIds) {
      prune();
      return views
        .filter((v) => !groupIds || groupIds.has(v.groupId))
        .reverse()
        .map(copy);
    },

    receiverOf(deliveryId, agentId) {
      for (let i = views.length - 1; i >= 0; i--) {
        const v = views[i];
        if (v.deliveryId !== deliveryId) continue;
        const receiver = v.receivers.find((x) => x.agentId === agentId);
        if (receiver) return { transfer: copy(v), receiver: { ...receiver } };
      }
      return undefined;
    },

    async stop() {
      for (const r of byGroup.values()) r.controller.abort();
    },
  };
}
