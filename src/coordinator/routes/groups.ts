/**
 * Groups, members and join requests. The creator owns a new group; owners and admins add and remove
 * members and decide requests. Every decision is written to the audit log in the same transaction,
 * then announced on the event bus.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { GroupRow, JoinRequestRow, Store, UserRow } from '../../store/store.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute } from '../define-route.ts';
import { defaultMulticastPort, parseMulticastAddress, pickMulticastAddress } from '../multicast-pool.ts';
import { createNameCache, groupView, joinRequestView, memberView } from '../views.ts';

export function registerGroupRoutes(app: FastifyInstance, ctx: CoordinatorContext): void {
  const { store, events } = ctx;

  const requireUser = async (s: Store, username: string): Promise<UserRow> => {
    const u = await s.getUserByName(username);
    if (!u) throw new ShoalError(ErrorCode.USER_NOT_FOUND, `no user named ${username}`);
    return u;
  };
  const audit = (
    s: Store,
    actor: UserRow,
    action: string,
    group: GroupRow | null,
    target: string | null,
    detail: string | null = null,
  ) =>
    s.addAudit({ at: Date.now(), actorId: actor.id, action, groupName: group?.name ?? null, target, detail });
  /** Throws LAST_OWNER when removing `userId`'s ownership would leave the group without an owner. */
  const keepAnOwner = async (s: Store, group: GroupRow, userId: string) => {
    const owners = (await s.listMembers(group.id)).filter((m) => m.role === 'owner');
    if (owners.length === 1 && owners[0].userId === userId) {
      throw new ShoalError(
        ErrorCode.LAST_OWNER,
        `${group.name} needs at least one owner; add another owner first (or delete the group)`,
      );
    }
  };

  defineRoute(app, ctx, 'listGroups', async ({ user }) => {
    const names = createNameCache(store);
    const groups = await store.listGroups();
    return { groups: await Promise.all(groups.map((g) => groupView(store, g, user, names))) };
  });

  defineRoute(app, ctx, 'myGroups', async ({ user }) => {
    const names = createNameCache(store);
    const groups = await store.listGroupsOfUser(user.id);
    return { groups: await Promise.all(groups.map((g) => groupView(store, g, user, names))) };
  });

  defineRoute(app, ctx, 'myRequests', async ({ user }) => {
    const names = createNameCache(store);
    const rows = await store.listJoinRequests({ userId: user.id });
    return { requests: await Promise.all(rows.map((r) => joinRequestView(store, r, names))) };
  });

  defineRoute(app, ctx, 'createGroup', async ({ body, user }) => {
    if (await store.getGroupByName(body.name))
      throw new ShoalError(ErrorCode.GROUP_EXISTS, `group ${body.name} exists`);
    const group = await store.transaction(async (tx) => {
      const used = await tx.usedMulticast();
      let address: string;
      if (body.multicastAddress !== undefined) {
        address = parseMulticastAddress(body.multicastAddress);
        // One address per group: receivers join by address, so a shared address would mix two groups' traffic.
        if (used.some((u) => u.address === address)) {
          throw new ShoalError(ErrorCode.MULTICAST_ADDRESS_TAKEN, `${address} is used by another group`);
        }
      } else {
        address = pickMulticastAddress(used.map((u) => u.address));
      }
      const g = await tx.createGroup({
        name: body.name,
        multicastAddress: address,
        multicastPort: body.multicastPort ?? defaultMulticastPort,
        createdBy: user.id,
      });
      await tx.addMember({ groupId: g.id, userId: user.id, role: 'owner', joinedAt: Date.now() });
      await audit(tx, user, 'group.create', g, null, `${address}:${g.multicastPort}`);
      return g;
    });
    events.publish({ type: 'group-created', group: group.name });
    return { group: await groupView(store, group, user) };
  });

  defineRoute(app, ctx, 'getGroup', async ({ group, user }) => ({
    group: await groupView(store, group, user),
  }));

  defineRoute(app, ctx, 'deleteGroup', async ({ group, user }) => {
    await store.transaction(async (tx) => {
      await tx.cancelDeliveriesOfGroup(group.id);
      await tx.deleteGroup(group.id);
      await audit(tx, user, 'group.delete', group, null);
    });
    events.publish({ type: 'group-deleted', group: group.name });
    await ctx.collectGarbage();
    return undefined;
  });

  defineRoute(app, ctx, 'listMembers', async ({ group }) => ({
    members: (await store.listMembers(group.id)).map(memberView),
  }));

  defineRoute(app, ctx, 'addMember', async ({ group, params, body, user }) => {
    const role = body?.role ?? 'member';
    const result = await store.transaction(async (tx) => {
      const target = await requireUser(tx, params.username);
      const existing = await tx.getMembership(group.id, target.id);
      if (existing?.role === role) return { member: existing, target, change: undefined };
      if (existing) {
        if (existing.role === 'owner') await keepAnOwner(tx, group, target.id);
        await tx.removeMember(group.id, target.id);
      }
      const member = {
        groupId: group.id,
        userId: target.id,
        role,
        joinedAt: existing?.joinedAt ?? Date.now(),
      } as const;
      await tx.addMember(member);
      const pending = await tx.getJoinRequest(group.id, target.id);
      if (pending?.state === 'pending') {
        await tx.upsertJoinRequest({
          ...pending,
          state: 'approved',
          decidedBy: user.id,
          decidedAt: Date.now(),
        });
      }
      await audit(tx, user, existing ? 'member.role' : 'member.add', group, target.username, role);
      return { member, target, change: existing ? ('role' as const) : ('added' as const) };
    });
    if (result.change)
      events.publish({
        type: 'membership-changed',
        group: group.name,
        username: result.target.username,
        change: result.change,
        role,
      });
    return { member: memberView({ ...result.member, username: result.target.username }) };
  });

  defineRoute(app, ctx, 'removeMember', async ({ group, params, user }) => {
    await store.transaction(async (tx) => {
      const target = await requireUser(tx, params.username);
      const existing = await tx.getMembership(group.id, target.id);
      if (!existing)
        throw new ShoalError(ErrorCode.NOT_FOUND, `${target.username} is not a member of ${group.name}`);
      if (existing.role === 'owner') await keepAnOwner(tx, group, target.id);
      await tx.removeMember(group.id, target.id);
      await audit(tx, user, 'member.remove', group, target.username);
    });
    events.publish({
      type: 'membership-changed',
      group: group.name,
      username: params.username,
      change: 'removed',
    });
    return undefined;
  });

  defineRoute(app, ctx, 'joinGroup', async ({ group, user, membership }) => {
    if (membership)
      throw new ShoalError(ErrorCode.ALREADY_MEMBER, `you are already a member of ${group.name}`);
    const row: JoinRequestRow = await store.transaction(async (tx) => {
      const prior = await tx.getJoinRequest(group.id, user.id);
      if (prior?.state === 'pending')
        throw new ShoalError(
          ErrorCode.REQUEST_PENDING,
          `your request to join ${group.name} is already pending`,
        );
      const r: JoinRequestRow = {
        groupId: group.id,
        userId: user.id,
        state: 'pending',
        createdAt: Date.now(),
        decidedBy: null,
        decidedAt: null,
      };
      await tx.upsertJoinRequest(r);
      await audit(tx, user, 'join.request', group, user.username);
      return r;
    });
    events.publish({ type: 'join-requested', group: group.name, username: user.username });
    return { request: await joinRequestView(store, row, undefined, group.name) };
  });

  defineRoute(app, ctx, 'leaveGroup', async ({ group, user, membership }) => {
    if (!membership) throw new ShoalError(ErrorCode.NOT_A_MEMBER, `you are not a member of ${group.name}`);
    await store.transaction(async (tx) => {
      if (membership.role === 'owner') await keepAnOwner(tx, group, user.id);
      await tx.removeMember(group.id, user.id);
      await audit(tx, user, 'member.leave', group, user.username);
    });
    events.publish({
      type: 'membership-changed',
      group: group.name,
      username: user.username,
      change: 'left',
    });
    return undefined;
  });

  defineRoute(app, ctx, 'listRequests', async ({ query, user }) => {
    let groupIds: string[] | undefined;
    if (query.group !== undefined) {
      const g = await ctx.auth.requireGroup(query.group);
      await ctx.auth.requireOwner(g, user);
      groupIds = [g.id];
    } else if (!user.isAdmin) {
      const mine = await store.listGroupsOfUser(user.id);
      const owned = [];
      for (const g of mine)
        if ((await store.getMembership(g.id, user.id))?.role === 'owner') owned.push(g.id);
      if (owned.length === 0) return { requests: [] };
      groupIds = owned;
    }
    const names = createNameCache(store);
    const rows = await store.listJoinRequests({ groupIds, state: 'pending' });
    return { requests: await Promise.all(rows.map((r) => joinRequestView(store, r, names))) };
  });

  const decide = async (group: GroupRow, username: string, actor: UserRow, state: 'approved' | 'denied') => {
    const row = await store.transaction(async (tx) => {
      const target = await requireUser(tx, username);
      const r = await tx.getJoinRequest(group.id, target.id);
      if (!r || r.state !== 'pending')
        throw new ShoalError(
          ErrorCode.REQUEST_NOT_FOUND,
          `no pending request of ${username} for ${group.name}`,
        );
      const decided: JoinRequestRow = { ...r, state, decidedBy: actor.id, decidedAt: Date.now() };
      await tx.upsertJoinRequest(decided);
      if (state === 'approved' && !(await tx.getMembership(group.id, target.id))) {
        await tx.addMember({ groupId: group.id, userId: target.id, role: 'member', joinedAt: Date.now() });
      }
      await audit(tx, actor, state === 'approved' ? 'join.approve' : 'join.deny', group, target.username);
      return decided;
    });
    events.publish({ type: 'join-decided', group: group.name, username, state });
    if (state === 'approved')
      events.publish({
        type: 'membership-changed',
        group: group.name,
        username,
        change: 'added',
        role: 'member',
      });
    return { request: await joinRequestView(store, row, undefined, group.name) };
  };

  defineRoute(app, ctx, 'approveRequest', ({ group, params, user }) =>
    decide(group, params.username, user, 'approved'),
  );
  defineRoute(app, ctx, 'denyRequest', ({ group, params, user }) =>
    decide(group, params.username, user, 'denied'),
  );
}
