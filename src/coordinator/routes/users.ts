/** User administration (admins): list, create, make admin, delete, a user's groups. */
import type { FastifyInstance } from 'fastify';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import { hashPassword } from '../../crypto/password.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute } from '../define-route.ts';
import { createNameCache, groupView, userView } from '../views.ts';

export function registerUserRoutes(app: FastifyInstance, ctx: CoordinatorContext): void {
  const { store } = ctx;
  const requireUser = async (username: string) => {
    const u = await store.getUserByName(username);
    if (!u) throw new ShoalError(ErrorCode.USER_NOT_FOUND, `no user named ${username}`);
    return u;
  };

  defineRoute(app, ctx, 'listUsers', async () => ({ users: (await store.listUsers()).map(userView) }));

  defineRoute(app, ctx, 'createUser', async ({ body, user: actor }) => {
    if (await store.getUserByName(body.username))
      throw new ShoalError(ErrorCode.USER_EXISTS, `user ${body.username} exists`);
    const user = await store.createUser({
      username: body.username,
      passwordHash: await hashPassword(body.password),
      isAdmin: body.isAdmin ?? false,
    });
    await store.addAudit({
      at: Date.now(),
      actorId: actor.id,
      action: 'user.create',
      groupName: null,
      target: user.username,
      detail: user.isAdmin ? 'admin' : null,
    });
    return { user: userView(user) };
  });

  defineRoute(app, ctx, 'updateUser', async ({ params, body, user: actor }) => {
    const user = await requireUser(params.username);
    if (user.id === actor.id && !body.isAdmin)
      throw new ShoalError(ErrorCode.CONFLICT, 'you cannot remove your own admin rights');
    await store.setAdmin(user.id, body.isAdmin);
    await store.addAudit({
      at: Date.now(),
      actorId: actor.id,
      action: body.isAdmin ? 'user.admin' : 'user.unadmin',
      groupName: null,
      target: user.username,
      detail: null,
    });
    return { user: userView({ ...user, isAdmin: body.isAdmin }) };
  });

  defineRoute(app, ctx, 'deleteUser', async ({ params, user: actor }) => {
    const user = await requireUser(params.username);
    if (user.id === actor.id) throw new ShoalError(ErrorCode.CONFLICT, 'you cannot delete your own account');
    await store.deleteUser(user.id);
    await store.addAudit({
      at: Date.now(),
      actorId: actor.id,
      action: 'user.delete',
      groupName: null,
      target: user.username,
      detail: null,
    });
    ctx.events.publish({ type: 'user-deleted', username: user.username });
    return undefined;
  });

  defineRoute(app, ctx, 'userGroups', async ({ params }) => {
    const user = await requireUser(params.username);
    const names = createNameCache(store);
    const groups = await store.listGroupsOfUser(user.id);
    // The roles shown are the user's, not the calling admin's.
    return { groups: await Promise.all(groups.map((g) => groupView(store, g, user, names))) };
  });
}
