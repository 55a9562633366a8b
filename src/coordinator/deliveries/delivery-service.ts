/**
 * The delivery scheduler: pending lists per group, 1:1 sends, offers to agents, progress and completion
 * reports, retries with backoff, and recovery after a restart. Every state change is written to the store
 * before anyone is told (offer, event), so a coordinator killed at any moment resumes from the store:
 * on start, recipients left `receiving` go back to `pending` and are offered again when their agent is back.
 * Membership is checked before every offer and ticket, so a removed member gets nothing new.
 */
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { CatalogueFile, Manifest } from '../../protocol/api.ts';
import type { ClientMessage, Holder, OfferMsg, ShoalEvent } from '../../protocol/events.ts';
import type { Logger } from '../../logger.ts';
import type { DeliveryRow, FileRow, RecipientRow, Store } from '../../store/store.ts';
import type { LiveAgent, Presence } from '../presence.ts';
import type { MulticastService } from './multicast-service.ts';

/** One file × one recipient, as the pending list shows it. */
export interface PendingEntry {
  deliveryId: string;
  fileId: string;
  fileName: string;
  size: number;
  username: string;
  state: RecipientRow['state'];
  bytes: number;
  /** bytes/s */
  rate: number;
  transport: string | null;
  /** ISO date or null. */
  deliveredAt: string | null;
  error: string | null;
  attempts: number;
  /** Live multicast figures while receiving: last loss rate (0..1) and passes answered; null otherwise. */
  loss: number | null;
  passes: number | null;
  /** How a delivered entry came (from the recipient row's detail); null before. */
  record: DeliveryRecord | null;
}

/** What a finished delivery records per member: how it came and how many bytes each way. */
export interface DeliveryRecord {
  how: string;
  /** Bytes verified from multicast datagrams. */
  multicastBytes: number;
  /** Bytes fetched over HTTPS from the coordinator and peers (repair or swarm). */
  fetchedBytes: number;
  transferId: string | null;
  passes: number | null;
}

/** Per-push overrides of the multicast sender, bits/s. */
export interface PushOptions {
  rateBps?: number;
  minRateBps?: number;
}

/** What `push` did. */
export interface PushResult {
  delivery: DeliveryRow;
  results: SendResult[];
  /** The multicast transfer it opened, or null (fewer than two online, multicast off, or the group busy). */
  transferId: string | null;
}

/** Result of sending to one recipient (fan-out operations never throw on one target). */
export interface SendResult {
  username: string;
  deliveryId: string;
  outcome: 'offered' | 'offline' | 'delivered' | 'skipped';
  agents: number;
}

export interface DeliveryServiceDeps {
  store: Store;
  logger: Logger;
  presence: Presence;
  /** Signs a piece ticket for `userId` and the file `sha256`, valid until `expiresAt` (epoch ms). */
  signTicket: (claims: { userId: string; sha256: string; expiresAt: number }) => string;
  /** Publishes an event to viewers (the hub filters who may see it). */
  publish: (event: ShoalEvent) => void;
  /** Multicast transfers for group deliveries with several members online; absent = swarm only. */
  multicast?: MulticastService;
  /** Path of a stored blob (what the multicast sender reads). */
  blobPath?: (sha256: string) => string;
}

export interface DeliveryServiceOptions {
  /** First retry delay after a failure, ms (doubles per attempt). */
  retryBaseMs?: number;
  /** Longest retry delay, ms. */
  retryMaxMs?: number;
  /** How often the retry sweep runs, ms. */
  sweepMs?: number;
  /** Ticket lifetime, ms. */
  ticketTtlMs?: number;
  /** Fewest online agents for which a delivery goes by multicast (default 2). */
  multicastMinReceivers?: number;
}

export interface DeliveryService {
  /** Puts recipients left `receiving` by a previous process back to `pending`, then starts the retry sweep. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Adds a catalogue file to a group's pending list (recipients: every member) and offers it to those online. */
  addPending(groupId: string, fileId: string, createdBy: string): Promise<DeliveryRow>;
  /** The pending list of a group: each file × each current member. */
  listPending(groupId: string): Promise<PendingEntry[]>;
  /** Offers every undelivered file of the group now to every online recipient (failed ones retry at once). */
  sendPending(groupId: string): Promise<SendResult[]>;
  /**
   * Delivers a catalogue file of the group now to every online member (by multicast when several are online,
   * with the given ceiling/floor), adding it to the pending list so offline members get it when they connect.
   */
  push(groupId: string, fileId: string, createdBy: string, opts?: PushOptions): Promise<PushResult>;
  /** Cancels one delivery of a group (agents receiving it are told to stop). */
  cancelDelivery(groupId: string | null, deliveryId: string): Promise<void>;
  /** A 1:1 delivery of an already stored file (groupId null) to one user. */
  sendDirect(fileId: string, fromUserId: string, toUserId: string): Promise<DeliveryRow>;
  /** Recipients of one delivery (for its creator, recipient or an admin). */
  recipientsOf(deliveryId: string): Promise<PendingEntry[]>;
  /** Ticket and holders of a file for a user allowed to fetch it (member of its group or a 1:1 recipient). */
  holdersFor(
    fileId: string,
    userId: string,
    exceptAgentId?: string,
  ): Promise<{ ticket: string; holders: Holder[]; manifest: Manifest; file: CatalogueFile }>;
  /** Whether `userId` may fetch the file with sha256 (used by the coordinator's piece server on top of the ticket). */
  mayFetch(userId: string, sha256: string): Promise<boolean>;
  /** Content hashes `userId` may fetch: their groups' files and the 1:1 sends to them. */
  fetchable(userId: string): Promise<Set<string>>;
  /** An agent said hello: offer it everything pending for its user. */
  agentOnline(agent: LiveAgent): Promise<void>;
  /** An agent went away: what it was receiving goes back to pending unless another agent of the user has it. */
  agentOffline(agent: LiveAgent): Promise<void>;
  /** A message from an agent (progress, completed, failed). */
  onAgentMessage(agent: LiveAgent, msg: ClientMessage): Promise<void>;
  /** A member joined a group: they get what is still pending for it. */
  memberAdded(groupId: string, userId: string): Promise<void>;
  /** A member left or was removed: their offers are cancelled and no new ticket is issued. */
  memberRemoved(groupId: string, userId: string): Promise<void>;
  /** A group is being deleted: its deliveries are cancelled. Call before the group row goes. */
  groupDeleted(groupId: string): Promise<void>;
  /** Tells agents to stop receiving deliveries cancelled behind our back (a group deleted by its route). */
  cancelOrphans(): Promise<void>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Creates the delivery scheduler. */
export function createDeliveryService(
  deps: DeliveryServiceDeps,
  options: DeliveryServiceOptions = {},
): DeliveryService {
  const { store, presence } = deps;
  const log = deps.logger.child('coordinator:deliveries');
  const retryBaseMs = options.retryBaseMs ?? 5000;
  const retryMaxMs = options.retryMaxMs ?? 10 * 60 * 1000;
  const sweepMs = options.sweepMs ?? 1000;
  const ticketTtlMs = options.ticketTtlMs ?? 10 * 60 * 1000;
  /** Most receivers of the same delivery named as holders in one offer. */
  const coReceiverLimit = 16;
  const multicastMinReceivers = Math.max(2, options.multicastMinReceivers ?? 2);
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping = false;
  let stopped = false;
  const inflight = new Set<Promise<unknown>>();

  const track = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p)).catch(() => undefined);
    return p;
  };

  async function groupName(groupId: string | null): Promise<string | null> {
    if (groupId === null) return null;
    return (await store.getGroupById(groupId))?.name ?? null;
  }

  async function usernameOf(userId: string): Promise<string> {
    return (await store.getUserById(userId))?.username ?? userId;
  }

  async function catalogueEntry(file: FileRow): Promise<{ file: CatalogueFile; manifest: Manifest }> {
    const blob = await store.getBlob(file.sha256);
    if (!blob) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `the bytes of ${file.name} are gone`);
    const entry: CatalogueFile = {
      id: file.id,
      group: (await groupName(file.groupId)) ?? '',
      name: file.name,
      size: file.size,
      type: file.type,
      sha256: file.sha256,
      pieceSize: blob.pieceSize,
      pieceCount: blob.pieces.length,
      sharedBy: await usernameOf(file.sharedBy),
      sharedAt: new Date(file.sharedAt).toISOString(),
    };
    return {
      file: entry,
      manifest: {
        name: file.name,
        size: file.size,
        sha256: file.sha256,
        pieceSize: blob.pieceSize,
        pieces: blob.pieces,
      },
    };
  }

  /** Whether the user is still entitled to the delivery (member of its group, or its 1:1 target). */
  async function entitled(d: DeliveryRow, userId: string): Promise<boolean> {
    if (d.cancelled) return false;
    if (d.groupId === null) return d.targetUserId === userId;
    return (await store.getMembership(d.groupId, userId)) !== undefined;
  }

  /**
   * Online agents of other recipients of `d` that are receiving it or about to (at most `coReceiverLimit`,
   * in random order): receivers of one delivery serve each other the pieces they have verified, so the
   * sharer's upload is not the only source while nobody has finished.
   */
  async function coReceivers(d: DeliveryRow, userId: string): Promise<string[]> {
    const rows = await store.listRecipients({ deliveryId: d.id, states: ['pending', 'receiving'] });
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [rows[i], rows[j]] = [rows[j], rows[i]];
    }
    const out: string[] = [];
    for (const r of rows) {
      if (out.length >= coReceiverLimit) break;
      if (r.userId === userId) continue;
      const agents = presence.ofUser(r.userId).filter((a) => a.listenUrl);
      if (agents.length === 0 || !(await entitled(d, r.userId))) continue;
      for (const a of agents) out.push(a.agentId);
    }
    return out.slice(0, coReceiverLimit);
  }

  function holdersList(sha256: string, agentIds: string[], exceptAgentId?: string): Holder[] {
    const out: Holder[] = [{ id: 'coordinator', url: null, fingerprint: null }];
    for (const id of agentIds) {
      if (id === exceptAgentId) continue;
      const a = presence.get(id);
      if (a?.listenUrl) out.push({ id, url: a.listenUrl, fingerprint: a.fingerprint });
    }
    return out;
  }

  async function announce(d: DeliveryRow, r: RecipientRow): Promise<void> {
    deps.publish({
      kind: 'recipient',
      group: await groupName(d.groupId),
      deliveryId: d.id,
      username: await usernameOf(r.userId),
      state: r.state,
      bytes: r.bytes,
      rate: r.rate,
      transport: r.transport,
      error: r.error,
      from: await usernameOf(d.createdBy),
    });
  }

  async function setRecipient(d: DeliveryRow, r: RecipientRow, announceIt = true): Promise<void> {
    await store.upsertRecipient(r);
    if (announceIt) await announce(d, r);
  }

  interface Prepared {
    agents: LiveAgent[];
    fileName: string;
    size: number;
    bytes: number;
    manifest: Manifest;
    sha256: string;
    build(a: LiveAgent, transferId?: string): OfferMsg;
  }

  /** Checks that `userId` should get `d` now, stores `receiving` (before anyone is told) and builds offers. */
  async function prepare(d: DeliveryRow, userId: string, transport: string): Promise<Prepared | undefined> {
    const agents = presence.ofUser(userId);
    if (agents.length === 0 || stopped) return undefined;
    if (!(await entitled(d, userId))) return undefined;
    const file = await store.getFile(d.fileId);
    if (!file) return undefined;
    const r = await store.getRecipient(d.id, userId);
    if (!r || r.state === 'delivered') return undefined;
    const { file: entry, manifest } = await catalogueEntry(file);
    const now = Date.now();
    await setRecipient(d, {
      ...r,
      state: 'receiving',
      transport,
      error: null,
      nextAttemptAt: null,
      updatedAt: now,
    });
    const holderIds = [
      ...new Set([...(await store.listHolders(file.sha256)), ...(await coReceivers(d, userId))]),
    ];
    const ticket = deps.signTicket({ userId, sha256: file.sha256, expiresAt: now + ticketTtlMs });
    const from = await usernameOf(d.createdBy);
    const group = await groupName(d.groupId);
    return {
      agents,
      fileName: file.name,
      size: file.size,
      bytes: r.bytes,
      manifest,
      sha256: file.sha256,
      build: (a, transferId) => ({
        type: 'offer',
        deliveryId: d.id,
        group,
        from,
        file: entry,
        manifest,
        ticket,
        holders: holdersList(file.sha256, holderIds, a.agentId),
        ...(transferId ? { transferId } : {}),
      }),
    };
  }

  function sendOffer(a: LiveAgent, p: Prepared, msg: OfferMsg, transport: string): boolean {
    try {
      a.send(msg);
      a.receiving.set(msg.deliveryId, {
        deliveryId: msg.deliveryId,
        fileName: p.fileName,
        bytes: p.bytes,
        size: p.size,
        rate: 0,
        transport,
      });
      return true;
    } catch (err) {
      log.warn('could not send an offer', { agentId: a.agentId, deliveryId: msg.deliveryId, err });
      return false;
    }
  }

  /** Offers delivery `d` to every online agent of `userId` (swarm); stores `receiving` first. Returns agents offered. */
  async function offer(d: DeliveryRow, userId: string): Promise<number> {
    const p = await prepare(d, userId, 'swarm');
    if (!p) return 0;
    for (const a of p.agents) sendOffer(a, p, p.build(a), 'swarm');
    log.info('offered', { deliveryId: d.id, user: userId, agents: p.agents.length });
    return p.agents.length;
  }

  /**
   * Delivers `d` now to the given users: one multicast transfer when enough of their agents are online and
   * the group's address is free, else (and for whoever multicast leaves short) swarm offers.
   * Returns the number of agents reached per user.
   */
  async function deliverNow(
    d: DeliveryRow,
    userIds: string[],
    opts: PushOptions = {},
  ): Promise<{ reached: Map<string, number>; transferId: string | null }> {
    const reached = new Map<string, number>();
    let transferId: string | null = null;
    const mc = deps.multicast;
    const group = d.groupId ? await store.getGroupById(d.groupId) : undefined;
    const online = userIds.filter((u) => presence.ofUser(u).length > 0);
    if (mc && group && !mc.busy(group.id) && !stopped && online.length >= multicastMinReceivers) {
      const prepared = new Map<string, Prepared>();
      for (const u of online) {
        const p = await prepare(d, u, 'multicast');
        if (p) prepared.set(u, p);
      }
      const agents = [...prepared.values()].flatMap((p) => p.agents);
      const first = [...prepared.values()][0];
      const blobPath = first ? deps.blobPath?.(first.sha256) : undefined;
      if (first && blobPath && agents.length >= multicastMinReceivers) {
        const ownerOf = new Map<string, string>();
        for (const [u, p] of prepared) for (const a of p.agents) ownerOf.set(a.agentId, u);
        for (const [u, p] of prepared) reached.set(u, p.agents.length);
        const transfer = mc.run(
          {
            groupId: group.id,
            deliveryId: d.id,
            address: group.multicastAddress,
            port: group.multicastPort,
            manifest: first.manifest,
            path: blobPath,
            agents,
            rateBps: opts.rateBps,
            minRateBps: opts.minRateBps,
          },
          (a, start) => {
            transferId = start.transferId;
            const p = prepared.get(ownerOf.get(a.agentId)!)!;
            try {
              a.send({
                type: 'multicast-start',
                transferId: start.transferId,
                deliveryId: d.id,
                key: start.key.toString('base64'),
                address: group.multicastAddress,
                port: group.multicastPort,
                manifest: p.manifest,
                chunkSize: start.chunkSize,
              });
            } catch {
              return false;
            }
            return sendOffer(a, p, p.build(a, start.transferId), 'multicast');
          },
        );
        // The sender runs in the background; whoever it leaves short finishes through the swarm.
        void track(
          transfer
            .catch(() => ({ complete: [] as string[], incomplete: agents.map((a) => a.agentId) }))
            .then(async ({ incomplete }) => {
              const users = new Set(
                incomplete.map((id) => ownerOf.get(id)).filter((u): u is string => u !== undefined),
              );
              for (const u of users)
                await offer(d, u).catch((err) => log.warn('swarm fallback failed', { err }));
            }),
        );
        return { reached, transferId };
      }
      // Not enough agents after all: the prepared ones get swarm offers below.
    }
    for (const u of userIds)
      reached.set(u, await offer(d, u).catch((err) => (log.warn('offer failed', { err }), 0)));
    return { reached, transferId };
  }

  /** The record of a delivered row, from its detail JSON (null when it has none). */
  function recordOf(r: RecipientRow): DeliveryRecord | null {
    if (r.state !== 'delivered' || !r.detail) return null;
    let d: Record<string, unknown>;
    try {
      d = JSON.parse(r.detail) as Record<string, unknown>;
    } catch {
      return null;
    }
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    return {
      how: typeof d.how === 'string' ? d.how : (r.transport ?? 'swarm'),
      multicastBytes: num(d.multicastBytes),
      fetchedBytes: num(d.fetchedBytes ?? d.swarmBytes),
      transferId: typeof d.transferId === 'string' ? d.transferId : null,
      passes: typeof d.passes === 'number' ? d.passes : null,
    };
  }

  /** The live multicast view of a receiving user (any of its agents in the delivery's newest transfer). */
  function liveMulticast(deliveryId: string, userId: string) {
    const mc = deps.multicast;
    if (!mc) return undefined;
    for (const a of presence.ofUser(userId)) {
      const found = mc.receiverOf(deliveryId, a.agentId);
      if (found) return found;
    }
    return undefined;
  }

  async function offerAllForUser(userId: string): Promise<void> {
    const rows = await store.listRecipients({ userId, states: ['pending', 'receiving', 'failed'] });
    for (const r of rows) {
      if (r.state === 'failed' && r.nextAttemptAt === null) continue; // given up or no longer entitled
      if (r.state === 'failed' && r.nextAttemptAt !== null && r.nextAttemptAt > Date.now()) continue;
      const d = await store.getDelivery(r.deliveryId);
      if (!d || d.cancelled) continue;
      try {
        await offer(d, userId);
      } catch (err) {
        log.warn('offer failed', { deliveryId: d.id, err });
      }
    }
  }

  async function retrySweep(): Promise<void> {
    if (sweeping || stopped) return;
    sweeping = true;
    try {
      const now = Date.now();
      const failed = await store.listRecipients({ states: ['failed'] });
      for (const r of failed) {
        if (r.nextAttemptAt === null || r.nextAttemptAt > now) continue;
        if (presence.ofUser(r.userId).length === 0) continue;
        const d = await store.getDelivery(r.deliveryId);
        if (!d || d.cancelled) continue;
        await offer(d, r.userId);
      }
    } catch (err) {
      log.warn('retry sweep failed', { err });
    } finally {
      sweeping = false;
    }
  }

  async function cancelFor(d: DeliveryRow, userIds: string[] | null, reason: string): Promise<void> {
    const rows = await store.listRecipients({ deliveryId: d.id });
    for (const r of rows) {
      if (userIds && !userIds.includes(r.userId)) continue;
      if (r.state !== 'delivered') {
        await setRecipient(
          d,
          { ...r, state: 'failed', error: reason, nextAttemptAt: null, updatedAt: Date.now() },
          true,
        );
      }
      for (const a of presence.ofUser(r.userId)) {
        if (!a.receiving.has(d.id)) continue;
        a.receiving.delete(d.id);
        try {
          a.send({ type: 'cancel', deliveryId: d.id, reason });
        } catch {
          // The socket is going away; the agent will not get a new ticket anyway.
        }
      }
    }
  }

  /**
   * The live (not cancelled) delivery of a group file, created when there is none; `existing` tells which.
   * FILE_NOT_FOUND when the file is not in that group.
   */
  async function groupDelivery(
    groupId: string,
    fileId: string,
    createdBy: string,
  ): Promise<{ d: DeliveryRow; existing: boolean }> {
    const file = await store.getFile(fileId);
    if (!file || file.groupId !== groupId)
      throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${fileId} in this group`);
    const existing = (await store.listDeliveries({ groupId })).find(
      (d) => d.fileId === fileId && !d.cancelled,
    );
    if (existing) return { d: existing, existing: true };
    const d = await store.createDelivery({
      fileId,
      groupId,
      targetUserId: null,
      createdBy,
      createdAt: Date.now(),
    });
    return { d, existing: false };
  }

  /** One result per user deliverNow was asked to reach: offered (to how many agents) or offline. */
  async function offerResults(
    deliveryId: string,
    userIds: string[],
    reached: Map<string, number>,
  ): Promise<SendResult[]> {
    const results: SendResult[] = [];
    for (const u of userIds) {
      const n = reached.get(u) ?? 0;
      results.push({
        username: await usernameOf(u),
        deliveryId,
        outcome: n > 0 ? 'offered' : 'offline',
        agents: n,
      });
    }
    return results;
  }

  async function newRecipient(deliveryId: string, userId: string): Promise<RecipientRow> {
    const row: RecipientRow = {
      deliveryId,
      userId,
      state: 'pending',
      bytes: 0,
      rate: 0,
      transport: null,
      error: null,
      attempts: 0,
      nextAttemptAt: null,
      updatedAt: Date.now(),
      deliveredAt: null,
      detail: null,
    };
    await store.upsertRecipient(row);
    return row;
  }

  async function entries(
    d: DeliveryRow,
    file: FileRow | undefined,
    onlyUserIds?: Set<string>,
  ): Promise<PendingEntry[]> {
    const rows = await store.listRecipients({ deliveryId: d.id });
    const out: PendingEntry[] = [];
    for (const r of rows) {
      if (onlyUserIds && !onlyUserIds.has(r.userId)) continue;
      const live = r.state === 'receiving' ? liveMulticast(d.id, r.userId) : undefined;
      out.push({
        deliveryId: d.id,
        fileId: d.fileId,
        fileName: file?.name ?? '(deleted)',
        size: file?.size ?? 0,
        username: await usernameOf(r.userId),
        state: r.state,
        bytes: r.bytes,
        rate: r.rate,
        transport: r.transport,
        deliveredAt: iso(r.deliveredAt),
        error: r.error,
        attempts: r.attempts,
        loss: live ? live.receiver.loss : null,
        // The transfer's pass under way says more to an operator than how many status requests were answered.
        passes: live ? Math.max(live.transfer.passes, live.receiver.passes) : null,
        record: recordOf(r),
      });
    }
    return out;
  }

  /** A holder that served a bad piece stops being offered for that file until it says hello again. */
  async function dropBadHolders(sha256: string, reported: unknown, by: LiveAgent): Promise<void> {
    if (!Array.isArray(reported)) return;
    for (const item of reported.slice(0, 100)) {
      const id =
        typeof item === 'string'
          ? item
          : typeof item === 'object' && item !== null
            ? (item as { id?: unknown }).id
            : undefined;
      if (typeof id !== 'string' || id === 'coordinator' || id === by.agentId) continue;
      log.warn('holder served a bad piece', { sha256, holder: id, reportedBy: by.agentId });
      await store.setHolder(sha256, id, false);
    }
  }

  /**
   * The recipient row's detail for a completion: the agent's figures plus the record (how, bytes each way,
   * transfer and passes), kept valid JSON under 8000 characters by dropping the agent's extras if need be.
   */
  function completionDetail(
    d: DeliveryRow,
    agent: LiveAgent,
    msg: Extract<ClientMessage, { type: 'completed' }>,
  ): string {
    const extra = msg.detail ?? {};
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
    const t = deps.multicast?.receiverOf(d.id, agent.agentId)?.transfer;
    const rec: Omit<DeliveryRecord, 'how'> & { how: string; agentId: string } = {
      how: msg.transport,
      multicastBytes: num(extra.multicastBytes),
      fetchedBytes: num(extra.swarmBytes),
      transferId: t?.transferId ?? null,
      passes: t ? t.passes : null,
      agentId: agent.agentId,
    };
    const full = JSON.stringify({ ...extra, ...rec });
    if (full.length <= 8000) return full;
    const { bytesPerHolder: _b, badHolders: _h, ...rest } = extra;
    const slim = JSON.stringify({ ...rest, ...rec });
    return slim.length <= 8000 ? slim : JSON.stringify(rec);
  }

  async function handle(agent: LiveAgent, msg: ClientMessage): Promise<void> {
    if (msg.type !== 'progress' && msg.type !== 'completed' && msg.type !== 'failed') return;
    const d = await store.getDelivery(msg.deliveryId);
    if (!d) return;
    const r = await store.getRecipient(d.id, agent.userId);
    if (!r) return;
    const now = Date.now();
    if (msg.type === 'progress') {
      const live = agent.receiving.get(d.id);
      if (live) Object.assign(live, { bytes: msg.bytes, rate: msg.rate, transport: msg.transport });
      // Only a delivery under way moves; a late report after a failure or a removal changes nothing.
      if ((r.state !== 'receiving' && r.state !== 'pending') || d.cancelled) return;
      await setRecipient(d, {
        ...r,
        state: 'receiving',
        bytes: msg.bytes,
        rate: msg.rate,
        transport: msg.transport,
        updatedAt: now,
      });
      return;
    }
    agent.receiving.delete(d.id);
    const file = await store.getFile(d.fileId);
    if (msg.type === 'completed') {
      if (!file || msg.sha256 !== file.sha256) {
        log.warn('completion with the wrong hash', { deliveryId: d.id, agentId: agent.agentId });
        return;
      }
      await store.setHolder(file.sha256, agent.agentId, true);
      await dropBadHolders(file.sha256, msg.detail?.badHolders, agent);
      if (r.state === 'delivered') return;
      await setRecipient(d, {
        ...r,
        state: 'delivered',
        bytes: file.size,
        rate: 0,
        transport: msg.transport,
        error: null,
        nextAttemptAt: null,
        deliveredAt: now,
        updatedAt: now,
        detail: completionDetail(d, agent, msg),
      });
      log.info('delivered', {
        deliveryId: d.id,
        user: agent.username,
        agentId: agent.agentId,
        transport: msg.transport,
      });
      return;
    }
    if (file) await dropBadHolders(file.sha256, msg.badHolders, agent);
    if (r.state === 'delivered') return;
    const attempts = r.attempts + 1;
    const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(20, attempts - 1));
    const stillEntitled = await entitled(d, agent.userId);
    await setRecipient(d, {
      ...r,
      state: 'failed',
      error: msg.reason.slice(0, 500),
      attempts,
      rate: 0,
      nextAttemptAt: stillEntitled && !msg.permanent ? now + delay : null,
      updatedAt: now,
      detail: msg.badHolders?.length ? JSON.stringify({ badHolders: msg.badHolders }) : r.detail,
    });
    log.warn('delivery failed on an agent', {
      deliveryId: d.id,
      agentId: agent.agentId,
      reason: msg.reason,
      retryInMs: delay,
    });
  }

  return {
    async start() {
      stopped = false;
      const stuck = await store.listRecipients({ states: ['receiving'] });
      for (const r of stuck) {
        if (presence.ofUser(r.userId).length > 0) continue;
        await store.upsertRecipient({ ...r, state: 'pending', rate: 0, updatedAt: Date.now() });
      }
      if (stuck.length) log.info('recovered interrupted deliveries', { count: stuck.length });
      sweeper = setInterval(() => void track(retrySweep()), sweepMs);
      sweeper.unref();
    },

    async stop() {
      stopped = true;
      if (sweeper) clearInterval(sweeper);
      sweeper = undefined;
      await deps.multicast?.stop();
      await Promise.allSettled([...inflight]);
    },

    async addPending(groupId, fileId, createdBy) {
      const { d, existing } = await groupDelivery(groupId, fileId, createdBy);
      const members = await store.listMembers(groupId);
      for (const m of members) {
        if (!(await store.getRecipient(d.id, m.userId))) await newRecipient(d.id, m.userId);
      }
      if (!existing) {
        deps.publish({
          kind: 'delivery',
          group: await groupName(groupId),
          deliveryId: d.id,
          action: 'created',
          fileId,
        });
      }
      await track(
        deliverNow(
          d,
          members.map((m) => m.userId),
        ),
      );
      return d;
    },

    async push(groupId, fileId, createdBy, opts = {}) {
      const { d, existing } = await groupDelivery(groupId, fileId, createdBy);
      const results: SendResult[] = [];
      const toSend: string[] = [];
      for (const m of await store.listMembers(groupId)) {
        const r = (await store.getRecipient(d.id, m.userId)) ?? (await newRecipient(d.id, m.userId));
        const username = await usernameOf(m.userId);
        if (r.state === 'delivered') {
          results.push({ username, deliveryId: d.id, outcome: 'delivered', agents: 0 });
          continue;
        }
        if (r.state === 'failed')
          await store.upsertRecipient({ ...r, state: 'pending', nextAttemptAt: null, updatedAt: Date.now() });
        toSend.push(m.userId);
      }
      deps.publish({
        kind: 'delivery',
        group: await groupName(groupId),
        deliveryId: d.id,
        action: existing ? 'sent' : 'created',
        fileId,
      });
      const { reached, transferId } = await track(deliverNow(d, toSend, opts));
      results.push(...(await offerResults(d.id, toSend, reached)));
      log.info('pushed', {
        deliveryId: d.id,
        transferId,
        online: [...reached.values()].filter((n) => n > 0).length,
      });
      return { delivery: d, results, transferId };
    },

    async listPending(groupId) {
      const members = new Set((await store.listMembers(groupId)).map((m) => m.userId));
      const out: PendingEntry[] = [];
      for (const d of await store.listDeliveries({ groupId })) {
        if (d.cancelled) continue;
        out.push(...(await entries(d, await store.getFile(d.fileId), members)));
      }
      return out;
    },

    async sendPending(groupId) {
      const results: SendResult[] = [];
      for (const d of await store.listDeliveries({ groupId })) {
        if (d.cancelled) continue;
        const toSend: string[] = [];
        for (const r of await store.listRecipients({ deliveryId: d.id })) {
          const username = await usernameOf(r.userId);
          if (r.state === 'delivered') {
            results.push({ username, deliveryId: d.id, outcome: 'delivered', agents: 0 });
            continue;
          }
          if (!(await entitled(d, r.userId))) {
            results.push({ username, deliveryId: d.id, outcome: 'skipped', agents: 0 });
            continue;
          }
          if (r.state === 'failed')
            await store.upsertRecipient({
              ...r,
              state: 'pending',
              nextAttemptAt: null,
              updatedAt: Date.now(),
            });
          toSend.push(r.userId);
        }
        const { reached } = await deliverNow(d, toSend);
        results.push(...(await offerResults(d.id, toSend, reached)));
        deps.publish({
          kind: 'delivery',
          group: await groupName(groupId),
          deliveryId: d.id,
          action: 'sent',
          fileId: d.fileId,
        });
      }
      return results;
    },

    async cancelDelivery(groupId, deliveryId) {
      const d = await store.getDelivery(deliveryId);
      if (!d || d.groupId !== groupId || d.cancelled)
        throw new ShoalError(ErrorCode.DELIVERY_NOT_FOUND, `no delivery ${deliveryId} here`);
      await cancelFor(d, null, 'cancelled');
      await store.cancelDelivery(deliveryId);
      deps.publish({
        kind: 'delivery',
        group: await groupName(groupId),
        deliveryId,
        action: 'cancelled',
        fileId: d.fileId,
      });
    },

    async sendDirect(fileId, fromUserId, toUserId) {
      const file = await store.getFile(fileId);
      if (!file) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${fileId}`);
      const d = await store.createDelivery({
        fileId,
        groupId: null,
        targetUserId: toUserId,
        createdBy: fromUserId,
        createdAt: Date.now(),
      });
      await newRecipient(d.id, toUserId);
      deps.publish({
        kind: 'delivery',
        group: null,
        deliveryId: d.id,
        action: 'created',
        fileId,
        from: await usernameOf(fromUserId),
      });
      await track(offer(d, toUserId).catch((err) => log.warn('offer failed', { err })));
      return d;
    },

    async recipientsOf(deliveryId) {
      const d = await store.getDelivery(deliveryId);
      if (!d) throw new ShoalError(ErrorCode.DELIVERY_NOT_FOUND, `no delivery ${deliveryId}`);
      return entries(d, await store.getFile(d.fileId));
    },

    async holdersFor(fileId, userId, exceptAgentId) {
      const file = await store.getFile(fileId);
      if (!file) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${fileId}`);
      if (!(await mayFetchFile(file, userId)))
        throw new ShoalError(ErrorCode.FORBIDDEN, 'not allowed to fetch this file');
      const { file: entry, manifest } = await catalogueEntry(file);
      const ticket = deps.signTicket({ userId, sha256: file.sha256, expiresAt: Date.now() + ticketTtlMs });
      return {
        ticket,
        holders: holdersList(file.sha256, await store.listHolders(file.sha256), exceptAgentId),
        manifest,
        file: entry,
      };
    },

    async mayFetch(userId, sha256) {
      // A ticket names a content hash; the same bytes may sit in several groups or sends.
      return (await fetchable(userId)).has(sha256);
    },

    fetchable,

    agentOnline: (agent) => track(offerAllForUser(agent.userId)),

    agentOffline: (agent) =>
      track(
        (async () => {
          if (stopped) return;
          for (const deliveryId of agent.receiving.keys()) {
            if (presence.ofUser(agent.userId).some((a) => a.receiving.has(deliveryId))) continue;
            const r = await store.getRecipient(deliveryId, agent.userId);
            const d = await store.getDelivery(deliveryId);
            if (!r || !d || r.state !== 'receiving') continue;
            await setRecipient(d, { ...r, state: 'pending', rate: 0, updatedAt: Date.now() });
          }
        })(),
      ),

    onAgentMessage: (agent, msg) => track(handle(agent, msg)),

    memberAdded: (groupId, userId) =>
      track(
        (async () => {
          for (const d of await store.listDeliveries({ groupId })) {
            if (d.cancelled) continue;
            const r = await store.getRecipient(d.id, userId);
            if (!r) await newRecipient(d.id, userId);
            else if (r.state === 'failed' && r.nextAttemptAt === null) {
              await store.upsertRecipient({ ...r, state: 'pending', error: null, updatedAt: Date.now() });
            }
            await offer(d, userId);
          }
        })(),
      ),

    memberRemoved: (groupId, userId) =>
      track(
        (async () => {
          for (const d of await store.listDeliveries({ groupId })) {
            if (!d.cancelled) await cancelFor(d, [userId], 'no longer a member of the group');
          }
        })(),
      ),

    async groupDeleted(groupId) {
      for (const d of await store.listDeliveries({ groupId })) {
        if (!d.cancelled) await cancelFor(d, null, 'group deleted');
      }
      await store.cancelDeliveriesOfGroup(groupId);
    },

    async cancelOrphans() {
      for (const a of presence.list()) {
        for (const deliveryId of [...a.receiving.keys()]) {
          const d = await store.getDelivery(deliveryId);
          if (d && !d.cancelled && (d.groupId === null || (await store.getGroupById(d.groupId)))) continue;
          a.receiving.delete(deliveryId);
          try {
            a.send({ type: 'cancel', deliveryId, reason: 'delivery cancelled' });
          } catch {
            // Going away anyway.
          }
        }
      }
    },
  };

  async function fetchable(userId: string): Promise<Set<string>> {
    const out = new Set<string>();
    if (!(await store.getUserById(userId))) return out;
    for (const g of await store.listGroupsOfUser(userId)) {
      for (const f of await store.listFiles(g.id, {})) out.add(f.sha256);
    }
    for (const d of await store.listDeliveries({ targetUserId: userId })) {
      if (d.cancelled || d.groupId !== null) continue;
      const f = await store.getFile(d.fileId);
      if (f) out.add(f.sha256);
    }
    return out;
  }

  async function mayFetchFile(file: FileRow, userId: string): Promise<boolean> {
    if (file.groupId !== null) return (await store.getMembership(file.groupId, userId)) !== undefined;
    if (file.sharedBy === userId) return true;
    for (const d of await store.listDeliveries({ targetUserId: userId })) {
      if (d.fileId === file.id && !d.cancelled) return true;
    }
    return false;
  }
}
