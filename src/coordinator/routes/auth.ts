/** Accounts and sessions: register, login (rate-limited), logout, whoami, server info. */
import type { FastifyInstance } from 'fastify';
import { ErrorCode, ShoalError, isShoalError } from '../../protocol/errors.ts';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../../crypto/password.ts';
import { createToken, hashToken } from '../../crypto/token.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute } from '../define-route.ts';
import { userView } from '../views.ts';

export function registerAuthRoutes(app: FastifyInstance, ctx: CoordinatorContext): void {
  const { store } = ctx;
  let dummyHash: Promise<string> | undefined;

  defineRoute(app, ctx, 'register', async ({ body }) => {
    if (!ctx.options.registration)
      throw new ShoalError(ErrorCode.REGISTRATION_CLOSED, 'self-registration is turned off; ask an admin');
    if (await store.getUserByName(body.username))
      throw new ShoalError(ErrorCode.USER_EXISTS, `user ${body.username} exists`);
    const user = await store.createUser({
      username: body.username,
      passwordHash: await hashPassword(body.password),
      isAdmin: false,
    });
    await store.addAudit({
      at: Date.now(),
      actorId: user.id,
      action: 'user.register',
      groupName: null,
      target: user.username,
      detail: null,
    });
    return { user: userView(user) };
  });

  defineRoute(app, ctx, 'login', async ({ body, req }) => {
    const address = req.ip;
    ctx.loginLimiter.check(body.username, address);
    const user = await store.getUserByName(body.username);
    // Verify against a throwaway hash for unknown users so both cases take as long.
    dummyHash ??= dummyPasswordHash();
    const ok = await verifyPassword(body.password, user?.passwordHash ?? (await dummyHash));
    if (!user || !ok) {
      ctx.loginLimiter.fail(body.username, address);
      ctx.logger.info('failed login', { username: body.username, address });
      throw new ShoalError(ErrorCode.INVALID_CREDENTIALS, 'wrong username or password');
    }
    const t = createToken();
    await store.createSession({
      tokenHash: t.tokenHash,
      userId: user.id,
      createdAt: t.createdAt,
      expiresAt: t.expiresAt,
    });
    return { token: t.token, expiresAt: new Date(t.expiresAt).toISOString(), user: userView(user) };
  });

  defineRoute(app, ctx, 'logout', async ({ req }) => {
    const token = ctx.auth.bearerToken(req.headers.authorization);
    if (token) await store.deleteSession(hashToken(token));
    return undefined;
  });

  defineRoute(app, ctx, 'whoami', async ({ user }) => ({ user: userView(user) }));

  defineRoute(app, ctx, 'serverInfo', async () => ({
    version: ctx.version,
    registration: ctx.options.registration,
    publicKey: ctx.ticketKeys.publicKeyPem,
  }));

  // Sessions expire on their own; sweep the table now and then so it does not grow forever.
  const sweep = setInterval(() => {
    store.deleteExpiredSessions(Date.now()).catch((err: unknown) => {
      if (!isShoalError(err)) ctx.logger.warn('session sweep failed', { err });
    });
  }, 3600_000);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));
}
