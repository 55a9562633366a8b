/** The audit log: admins see everything; owners see the groups they own. */
import type { FastifyInstance } from 'fastify';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { AuditRow } from '../../store/store.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute } from '../define-route.ts';
import { auditView, createNameCache } from '../views.ts';

export function registerAuditRoutes(app: FastifyInstance, ctx: CoordinatorContext): void {
  const { store } = ctx;
  defineRoute(app, ctx, 'audit', async ({ query, user }) => {
    const limit = query.limit ?? 100;
    let rows: AuditRow[];
    if (query.group !== undefined && user.isAdmin) {
      // By name, so the history of a deleted group stays readable.
      rows = await store.listAudit({ groupName: query.group, limit });
    } else if (query.group !== undefined) {
      const g = await ctx.auth.requireGroup(query.group);
      await ctx.auth.requireOwner(g, user);
      rows = await store.listAudit({ groupName: g.name, limit });
    } else if (user.isAdmin) {
      rows = await store.listAudit({ limit });
    } else {
      const owned = [];
      for (const g of await store.listGroupsOfUser(user.id)) {
        if ((await store.getMembership(g.id, user.id))?.role === 'owner') owned.push(g);
      }
      if (owned.length === 0)
        throw new ShoalError(ErrorCode.FORBIDDEN, 'the audit log is for admins and group owners');
      rows = (await Promise.all(owned.map((g) => store.listAudit({ groupName: g.name, limit }))))
        .flat()
        .sort((a, b) => b.at - a.at)
        .slice(0, limit);
    }
    const names = createNameCache(store);
    return { entries: await Promise.all(rows.map((r) => auditView(r, names))) };
  });
}
