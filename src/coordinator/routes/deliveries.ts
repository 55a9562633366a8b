/**
 * Deliveries over REST: a group's pending list (add, list, send now, cancel), 1:1 sends (upload then
 * deliver to one user), one delivery's status, and a file's holders with a fresh piece ticket.
 */
import type { FastifyInstance } from 'fastify';
import type { DeliveryInfo, MulticastTransfer } from '../../protocol/api.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { DeliveryRow, UserRow } from '../../store/store.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute } from '../define-route.ts';
import type { DeliveryService, PendingEntry } from '../deliveries/delivery-service.ts';
import type { MulticastService, TransferView } from '../deliveries/multicast-service.ts';
import { checkFileName } from '../file-name.ts';
import { createNameCache, fileView } from '../views.ts';
import { registerRawBodyRoutes, storeUploadedFile, withUploadedBlob } from './uploaded-blob.ts';

async function deliveryInfo(
  ctx: CoordinatorContext,
  deliveries: DeliveryService,
  d: DeliveryRow,
): Promise<DeliveryInfo> {
  const names = createNameCache(ctx.store);
  return {
    id: d.id,
    fileId: d.fileId,
    group: d.groupId ? ((await ctx.store.getGroupById(d.groupId))?.name ?? null) : null,
    createdBy: (await names(d.createdBy)) ?? '(deleted)',
    createdAt: new Date(d.createdAt).toISOString(),
    cancelled: d.cancelled,
    recipients: await deliveries.recipientsOf(d.id),
  };
}

/** Registers the pending-list, push, transfers, 1:1 send, delivery status and holders routes. */
export function registerDeliveryRoutes(
  app: FastifyInstance,
  ctx: CoordinatorContext,
  deps: { deliveries: DeliveryService; multicast?: MulticastService },
): void {
  const { store } = ctx;
  const { deliveries } = deps;

  defineRoute(app, ctx, 'pushFile', async ({ group, body, user }) => {
    const mbit = (v: number | undefined) => (v === undefined ? undefined : v * 1_000_000);
    if (body.rateMbit !== undefined && body.minRateMbit !== undefined && body.minRateMbit > body.rateMbit)
      throw new ShoalError(ErrorCode.BAD_REQUEST, 'the rate floor is above the ceiling');
    const res = await deliveries.push(group.id, body.fileId, user.id, {
      rateBps: mbit(body.rateMbit),
      minRateBps: mbit(body.minRateMbit),
    });
    await store.addAudit({
      at: Date.now(),
      actorId: user.id,
      action: 'pending.push',
      groupName: group.name,
      target: body.fileId,
      detail: `${res.delivery.id}${res.transferId ? ` multicast ${res.transferId}` : ''}${body.rateMbit ? ` rate ${body.rateMbit} Mbit/s` : ''}`,
    });
    return {
      delivery: await deliveryInfo(ctx, deliveries, res.delivery),
      results: res.results,
      transferId: res.transferId,
    };
  });

  /** Group ids whose transfers `user` may see: one group (its owners, admins), all (admins) or the groups they own. */
  const visibleGroups = async (
    user: UserRow,
    groupName: string | undefined,
  ): Promise<Set<string> | undefined> => {
    if (groupName !== undefined) {
      const group = await ctx.auth.requireGroup(groupName);
      await ctx.auth.requireOwner(group, user);
      return new Set([group.id]);
    }
    if (user.isAdmin) return undefined;
    const owned = new Set<string>();
    for (const g of await store.listGroupsOfUser(user.id))
      if ((await store.getMembership(g.id, user.id))?.role === 'owner') owned.add(g.id);
    return owned;
  };

  const transferView = async (t: TransferView): Promise<MulticastTransfer> => {
    let entries: PendingEntry[] = [];
    try {
      entries = await deliveries.recipientsOf(t.deliveryId);
    } catch {
      // The delivery went away; the transfer is still shown.
    }
    const byUser = new Map(entries.map((e) => [e.username, e]));
    return {
      transferId: t.transferId,
      deliveryId: t.deliveryId,
      group: (await store.getGroupById(t.groupId))?.name ?? '(deleted)',
      fileName: t.fileName,
      size: t.size,
      chunks: t.chunks,
      rateBps: t.rateBps,
      minRateBps: t.minRateBps,
      currentRateBps: t.currentRateBps,
      passes: t.passes,
      maxPasses: t.maxPasses,
      state: t.state,
      startedAt: new Date(t.startedAt).toISOString(),
      finishedAt: t.finishedAt === null ? null : new Date(t.finishedAt).toISOString(),
      wireBytes: t.wireBytes,
      receivers: t.receivers.map((r) => {
        const e = byUser.get(r.username);
        return {
          ...r,
          // While receiving, the agent's own progress reports are fresher than the last status answer.
          bytes:
            e?.state === 'receiving' && e.transport === 'multicast' ? Math.max(r.bytes, e.bytes) : r.bytes,
          delivery: e?.state ?? null,
          rate: e?.state === 'receiving' ? e.rate : 0,
          transport: e?.transport ?? null,
          multicastBytes: e?.record?.multicastBytes ?? null,
          fetchedBytes: e?.record?.fetchedBytes ?? null,
        };
      }),
    };
  };

  defineRoute(app, ctx, 'listTransfers', async ({ user, query }) => {
    const groups = await visibleGroups(user, query.group);
    const list = deps.multicast?.list(groups) ?? [];
    const transfers: MulticastTransfer[] = [];
    for (const t of list) transfers.push(await transferView(t));
    return { transfers };
  });

  defineRoute(app, ctx, 'listPending', async ({ group }) => ({
    entries: await deliveries.listPending(group.id),
  }));

  defineRoute(app, ctx, 'addPending', async ({ group, body, user }) => {
    const d = await deliveries.addPending(group.id, body.fileId, user.id);
    await store.addAudit({
      at: Date.now(),
      actorId: user.id,
      action: 'pending.add',
      groupName: group.name,
      target: body.fileId,
      detail: d.id,
    });
    return { delivery: await deliveryInfo(ctx, deliveries, d) };
  });

  defineRoute(app, ctx, 'sendPending', async ({ group, user }) => {
    const results = await deliveries.sendPending(group.id);
    await store.addAudit({
      at: Date.now(),
      actorId: user.id,
      action: 'pending.send',
      groupName: group.name,
      target: null,
      detail: null,
    });
    return { results };
  });

  defineRoute(app, ctx, 'cancelPending', async ({ group, params, user }) => {
    await deliveries.cancelDelivery(group.id, params.deliveryId);
    await store.addAudit({
      at: Date.now(),
      actorId: user.id,
      action: 'pending.cancel',
      groupName: group.name,
      target: params.deliveryId,
      detail: null,
    });
  });

  const mayViewDelivery = async (d: DeliveryRow, user: UserRow): Promise<boolean> => {
    if (user.isAdmin || d.createdBy === user.id || d.targetUserId === user.id) return true;
    if (d.groupId === null) return false;
    const m = await store.getMembership(d.groupId, user.id);
    return m?.role === 'owner' || (await store.getRecipient(d.id, user.id)) !== undefined;
  };

  defineRoute(app, ctx, 'getDelivery', async ({ params, user }) => {
    const d = await store.getDelivery(params.deliveryId);
    if (!d || !(await mayViewDelivery(d, user)))
      throw new ShoalError(ErrorCode.DELIVERY_NOT_FOUND, `no delivery ${params.deliveryId}`);
    return { delivery: await deliveryInfo(ctx, deliveries, d) };
  });

  defineRoute(app, ctx, 'fileHolders', async ({ params, user }) => {
    const f = await store.getFile(params.fileId);
    if (!f) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${params.fileId}`);
    try {
      return await deliveries.holdersFor(f.id, user.id);
    } catch (err) {
      // Someone who may not fetch the file learns nothing about it.
      if (err instanceof ShoalError && err.code === ErrorCode.FORBIDDEN)
        throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${params.fileId}`);
      throw err;
    }
  });

  // The 1:1 upload takes raw bytes, in its own encapsulated context like the share route.
  registerRawBodyRoutes(app, (upload) => {
    defineRoute(upload, ctx, 'sendDirect', async ({ query, body, user, req }) => {
      const name = checkFileName(query.name);
      const to = await store.getUserByName(query.to);
      if (!to) throw new ShoalError(ErrorCode.USER_NOT_FOUND, `no user named ${query.to}`);
      return withUploadedBlob(ctx, req, body, async (blob) => {
        const { f, blobRow } = await storeUploadedFile(
          store,
          blob,
          { groupId: null, name, sharedBy: user.id },
          { action: 'file.direct', groupName: null, target: to.username },
        );
        const d = await deliveries.sendDirect(f.id, user.id, to.id);
        return {
          delivery: await deliveryInfo(ctx, deliveries, d),
          file: await fileView(f, blobRow, '', createNameCache(store)),
        };
      });
    });
  });
}
