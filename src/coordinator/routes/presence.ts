/**
 * Presence over REST: which receivers are connected now, and a round-trip check of one of them.
 * Admins see every agent; with `?group=` an owner sees the agents of that group's members; anyone else
 * sees their own agents.
 */
import type { FastifyInstance } from 'fastify';
import type { Receiver } from '../../protocol/api.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { UserRow } from '../../store/store.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute } from '../define-route.ts';
import type { LiveAgent, Presence } from '../presence.ts';

/** How long a check waits for the agent's answer, ms. */
export const checkTimeoutMs = 5000;

function receiverView(a: LiveAgent): Receiver {
  return {
    agentId: a.agentId,
    username: a.username,
    name: a.name,
    version: a.version,
    address: a.address,
    since: new Date(a.since).toISOString(),
    lastSeen: new Date(a.lastSeen).toISOString(),
    listenUrl: a.listenUrl,
    receiving: [...a.receiving.values()].map((r) => ({ ...r })),
  };
}

/** Registers GET /receivers and POST /receivers/:agentId/check. */
export function registerPresenceRoutes(
  app: FastifyInstance,
  ctx: CoordinatorContext,
  deps: { presence: Presence; checkTimeoutMs?: number },
): void {
  const { store } = ctx;
  const { presence } = deps;

  /** Users whose agents `user` may see, or null for all. */
  const visibleUsers = async (user: UserRow, groupName: string | undefined): Promise<Set<string> | null> => {
    if (groupName !== undefined) {
      const group = await ctx.auth.requireGroup(groupName);
      await ctx.auth.requireOwner(group, user);
      return new Set((await store.listMembers(group.id)).map((m) => m.userId));
    }
    return user.isAdmin ? null : new Set([user.id]);
  };

  defineRoute(app, ctx, 'listReceivers', async ({ user, query }) => {
    const users = await visibleUsers(user, query.group);
    const agents = presence.list(users ? { userIds: users } : undefined);
    agents.sort((a, b) => a.username.localeCompare(b.username) || a.name.localeCompare(b.name));
    return { receivers: agents.map(receiverView) };
  });

  defineRoute(app, ctx, 'checkReceiver', async ({ user, params }) => {
    const agent = presence.get(params.agentId);
    if (!agent || (!user.isAdmin && agent.userId !== user.id)) {
      throw new ShoalError(ErrorCode.AGENT_NOT_FOUND, `no receiver ${params.agentId} is connected`);
    }
    const rttMs = await presence.probe(agent.agentId, deps.checkTimeoutMs ?? checkTimeoutMs);
    return { agentId: agent.agentId, rttMs };
  });
}
