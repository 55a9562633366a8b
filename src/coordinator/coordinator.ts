/**
 * The coordinator: a Fastify HTTPS app serving the REST API under /api/v1 (routes/*), OpenAPI at /api/docs
 * and the built web UI. start() prepares the data directory (certificate, ticket key, blobs, leftover
 * uploads), migrates the store, creates the `admin` account on first start, and listens.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { ErrorCode, ShoalError, isShoalError } from '../protocol/errors.ts';
import { Limits } from '../protocol/limits.ts';
import type { Store } from '../store/store.ts';
import type { Logger } from '../logger.ts';
import { packageVersion } from '../package-version.ts';
import { hashPassword } from '../crypto/password.ts';
import { createBlobStore } from './blob-store.ts';
import {
  createAuthHelpers,
  type CoordinatorContext,
  type CoordinatorOptions,
  type ResolvedOptions,
} from './context.ts';
import { createEventBus } from './event-bus.ts';
import { errorBody, installErrorHandler } from './http-errors.ts';
import { createLoginLimiter } from './login-limiter.ts';
import { disableFastifySchemas, registerOpenApi } from './openapi.ts';
import { loadTicketKeys, loadTlsMaterial } from './tls-material.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerUserRoutes } from './routes/users.ts';
import { registerGroupRoutes } from './routes/groups.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerAgentPlane } from './deliveries/agent-plane.ts';

export type { CoordinatorOptions, CoordinatorContext } from './context.ts';

/** What start() reports. `adminPassword` is set only when the admin account was just created with a generated password. */
export interface CoordinatorStarted {
  url: string;
  fingerprint: string;
  adminPassword?: string;
}

export interface Coordinator {
  /** Prepares the data directory and store, then listens. */
  start(): Promise<CoordinatorStarted>;
  /** Stops listening and closes open connections; the store stays open (it belongs to the caller). */
  stop(): Promise<void>;
  /** The shared context (available after start()). */
  readonly context: CoordinatorContext;
  /** The Fastify app (available after start()). */
  readonly app: FastifyInstance;
  /** https://host:port (available after start()). */
  readonly url: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Default admin username, created on first start. */
export const adminUsername = 'admin';

function resolveOptions(o: CoordinatorOptions): ResolvedOptions {
  return Object.freeze({
    dataDir: resolve(o.dataDir),
    host: o.host ?? '0.0.0.0',
    port: o.port ?? 0,
    tls: o.tls,
    registration: o.registration ?? true,
    adminPassword: o.adminPassword,
    pieceSize: o.pieceSize ?? Limits.pieceBytes,
    webRoot: o.webRoot,
    loginFailuresPerUser: o.loginFailuresPerUser ?? 5,
    loginFailuresPerAddress: o.loginFailuresPerAddress ?? 20,
    heartbeatMs: o.heartbeatMs,
    multicast: o.multicast ? Object.freeze({ ...o.multicast }) : undefined,
  });
}

const securityHeaders: Record<string, string> = {
  'strict-transport-security': 'max-age=31536000',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};
const appCsp =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async function hasIndex(dir: string | undefined): Promise<boolean> {
  if (!dir) return false;
  try {
    return (await stat(join(dir, 'index.html'))).isFile();
  } catch {
    return false;
  }
}

/** Builds the Fastify app with every route; the caller listens. */
async function buildApp(
  ctx: CoordinatorContext,
  tls: { cert: string; key: string },
): Promise<FastifyInstance> {
  const app = Fastify({
    https: { cert: tls.cert, key: tls.key },
    bodyLimit: Limits.jsonBodyBytes,
    logger: false,
    forceCloseConnections: true,
    // Uploads of many GiB must not be cut by a request timeout.
    requestTimeout: 0,
  });
  disableFastifySchemas(app);
  installErrorHandler(app, ctx.logger);

  // Like Fastify's JSON parser, but a POST without a body is `undefined` rather than an error.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) done(null, undefined);
    else jsonParser(req, body as string, done);
  });

  app.addHook('onSend', async (req, reply, payload) => {
    for (const [k, v] of Object.entries(securityHeaders)) reply.header(k, v);
    if (!req.url.startsWith('/api/docs')) reply.header('content-security-policy', appCsp);
    if (req.url.startsWith('/api/v1') && !reply.hasHeader('cache-control'))
      reply.header('cache-control', 'no-store');
    return payload;
  });

  // One line per request at debug; never headers or bodies (tokens, passwords).
  app.addHook('onResponse', async (req, reply) => {
    ctx.logger.debug('request', {
      method: req.method,
      route: req.routeOptions.url ?? req.url.split('?')[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      address: req.ip,
    });
  });

  await registerOpenApi(app, { version: ctx.version });

  registerAuthRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerGroupRoutes(app, ctx);
  registerFileRoutes(app, ctx);
  registerAuditRoutes(app, ctx);
  // Deliveries, presence and the WebSocket hub register here, one line each.
  await registerAgentPlane(app, ctx);

  const webRoot = (await hasIndex(ctx.options.webRoot)) ? resolve(ctx.options.webRoot as string) : undefined;
  if (webRoot) {
    const fastifyStatic = (await import('@fastify/static')).default;
    await app.register(fastifyStatic, {
      root: webRoot,
      prefix: '/',
      index: 'index.html',
      decorateReply: true,
    });
  }
  app.setNotFoundHandler((req, reply) => {
    // Client-side routes of the web UI: any other GET outside /api answers index.html.
    if (webRoot && (req.method === 'GET' || req.method === 'HEAD') && !req.url.startsWith('/api')) {
      return reply.type('text/html; charset=utf-8').sendFile('index.html');
    }
    return reply
      .code(404)
      .send(
        errorBody(new ShoalError(ErrorCode.NOT_FOUND, `no route ${req.method} ${req.url.split('?')[0]}`)),
      );
  });
  return app;
}

/** Creates a coordinator over `deps.store`; nothing happens until start(). */
export function createCoordinator(
  deps: { store: Store; logger: Logger },
  options: CoordinatorOptions,
): Coordinator {
  const opts = resolveOptions(options);
  const logger = deps.logger.child('coordinator');
  let ctx: CoordinatorContext | undefined;
  let app: FastifyInstance | undefined;
  let url: string | undefined;
  let starting: Promise<CoordinatorStarted> | undefined;

  const notStarted = (): never => {
    throw new ShoalError(ErrorCode.INTERNAL, 'coordinator not started');
  };

  async function ensureAdmin(store: Store): Promise<string | undefined> {
    const users = await store.listUsers();
    if (users.some((u) => u.isAdmin) || users.some((u) => u.username === adminUsername)) return undefined;
    const given = opts.adminPassword ?? process.env.SHOAL_ADMIN_PASSWORD;
    const password = given ?? randomBytes(15).toString('base64url');
    try {
      await store.createUser({
        username: adminUsername,
        passwordHash: await hashPassword(password),
        isAdmin: true,
      });
    } catch (err) {
      // Another coordinator on the same database created it first.
      if (isShoalError(err, ErrorCode.USER_EXISTS)) return undefined;
      throw err;
    }
    await store.addAudit({
      at: Date.now(),
      actorId: null,
      action: 'user.create',
      groupName: null,
      target: adminUsername,
      detail: 'admin (first start)',
    });
    logger.info('created the admin account', { username: adminUsername });
    return given === undefined ? password : undefined;
  }

  async function doStart(): Promise<CoordinatorStarted> {
    const { store } = deps;
    await mkdir(opts.dataDir, { recursive: true });
    await store.migrate();
    const blobs = createBlobStore({ logger: logger.child('coordinator:blobs') }, { dataDir: opts.dataDir });
    await blobs.init();
    await blobs.cleanTmp();
    const [tls, ticketKeys] = await Promise.all([
      loadTlsMaterial({ logger }, { dataDir: opts.dataDir, tls: opts.tls }),
      loadTicketKeys({ logger }, { dataDir: opts.dataDir }),
    ]);

    const collectGarbage = async () => {
      try {
        for (const sha of await store.listOrphanBlobs()) {
          // deleteBlob re-checks orphanhood in the database; collect() skips bytes an upload is finishing.
          await blobs.collect(sha, () => store.deleteBlob(sha));
        }
      } catch (err) {
        logger.warn('blob garbage collection failed', { err });
      }
    };
    const context: CoordinatorContext = {
      store,
      logger,
      options: opts,
      blobs,
      events: createEventBus({ logger: logger.child('coordinator:events') }),
      auth: createAuthHelpers({ store }),
      loginLimiter: createLoginLimiter({
        perUser: opts.loginFailuresPerUser,
        perAddress: opts.loginFailuresPerAddress,
      }),
      ticketKeys,
      fingerprint: tls.fingerprint,
      version: packageVersion(),
      collectGarbage,
    };
    await collectGarbage();
    // Bytes renamed into place whose catalogue row never committed (killed between the two).
    for (const name of await readdir(blobs.dir)) {
      if (/^[0-9a-f]{64}$/.test(name) && !(await store.getBlob(name))) await blobs.remove(name);
    }
    const adminPassword = await ensureAdmin(store);

    const built = await buildApp(context, tls);
    await built.listen({ host: opts.host, port: opts.port });
    const addr = built.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : opts.port;
    const wildcard = opts.host === '0.0.0.0' || opts.host === '::';
    const host = wildcard ? '127.0.0.1' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    ctx = context;
    app = built;
    url = `https://${host}:${port}`;
    logger.info('listening', { url, fingerprint: tls.fingerprint });
    return adminPassword === undefined
      ? { url, fingerprint: tls.fingerprint }
      : { url, fingerprint: tls.fingerprint, adminPassword };
  }

  const stop = async () => {
    const a = app;
    app = undefined;
    starting = undefined;
    if (a) await a.close();
  };

  return {
    start() {
      starting ??= doStart();
      return starting;
    },
    stop,
    get context() {
      return ctx ?? notStarted();
    },
    get app() {
      return app ?? notStarted();
    },
    get url() {
      return url ?? notStarted();
    },
    [Symbol.asyncDispose]: stop,
  };
}
