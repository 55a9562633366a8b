/**
 * Registers one route of the table in src/protocol/api.ts: method, path and access come from the table, so
 * the handler cannot disagree with the contract. Order of checks: bearer token (401), path parameters,
 * the `:group` exists (404 GROUP_NOT_FOUND), access (403), then query and JSON body against the zod schemas
 * (400 VALIDATION_FAILED with the zod issues; unknown fields refused). Raw (upload) bodies are passed
 * through unvalidated. A handler returns the JSON answer (200), or undefined for 204.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { z } from 'zod';
import { routes, type Access, type RouteDef, type RouteName, type Routes } from '../protocol/api.ts';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import type { GroupRow, MembershipRow, UserRow } from '../store/store.ts';
import type { CoordinatorContext } from './context.ts';
import { routeSchema } from './openapi.ts';

/** Prefix of every REST route. */
export const apiPrefix = '/api/v1';

type Out<T> = T extends z.ZodType ? z.output<T> : undefined;
type Field<R, K extends string> = R extends { [P in K]: infer S } ? Out<S> : undefined;

/** What a handler of route `N` receives. */
export interface RouteCall<N extends RouteName> {
  /** The caller; undefined only on anonymous routes called without a token. */
  user: Routes[N]['access'] extends 'anonymous' ? UserRow | undefined : UserRow;
  params: Field<Routes[N], 'params'>;
  query: Field<Routes[N], 'query'>;
  /** Parsed JSON body, or the raw request stream on `raw` routes. */
  body: Routes[N] extends { raw: true } ? NodeJS.ReadableStream : Field<Routes[N], 'body'>;
  /** The `:group` of the path, when the route has one. */
  group: Routes[N]['path'] extends `${string}:group${string}` ? GroupRow : undefined;
  /** The caller's membership of that group (undefined for non-members, e.g. admins). */
  membership: MembershipRow | undefined;
  req: FastifyRequest;
  reply: FastifyReply;
}

export type RouteHandler<N extends RouteName> = (call: RouteCall<N>) => Promise<unknown>;

/**
 * Return this from a handler that answered through `reply` itself (streams). Returning `reply` would not
 * do: a Fastify reply is a thenable, so an async handler returning it waits until the answer is sent.
 */
export const replied: unique symbol = Symbol('replied');

/** Extra Fastify route options (e.g. bodyLimit) merged into the registration. */
export type ExtraRouteOptions = Pick<RouteShorthandOptions, 'bodyLimit'>;

function validationError(where: string, error: z.ZodError): ShoalError {
  return new ShoalError(
    ErrorCode.VALIDATION_FAILED,
    `invalid ${where}: ${z.prettifyError(error).split('\n')[0] ?? ''}`.trim(),
    {
      where,
      issues: error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message })),
    },
  );
}

function parse(where: string, schema: z.ZodType | undefined, value: unknown): unknown {
  if (!schema) return undefined;
  // Query strings may not carry unknown keys either.
  const strict = where === 'query' && schema instanceof z.ZodObject ? schema.strict() : schema;
  const result = strict.safeParse(value);
  if (!result.success) throw validationError(where, result.error);
  return result.data;
}

async function checkAccess(
  ctx: CoordinatorContext,
  access: Access,
  user: UserRow | undefined,
  group: GroupRow | undefined,
): Promise<MembershipRow | undefined> {
  if (access === 'anonymous') return group && user ? ctx.auth.membership(group, user) : undefined;
  if (!user) throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'log in first');
  switch (access) {
    case 'user':
      return group ? ctx.auth.membership(group, user) : undefined;
    case 'admin':
      if (!user.isAdmin) throw new ShoalError(ErrorCode.FORBIDDEN, 'admins only');
      return undefined;
    case 'member':
      if (!group) throw new ShoalError(ErrorCode.INTERNAL, 'member route without :group');
      return ctx.auth.requireMember(group, user);
    case 'owner':
      if (!group) throw new ShoalError(ErrorCode.INTERNAL, 'owner route without :group');
      return ctx.auth.requireOwner(group, user);
  }
}

/** Registers route `name` of the table on `app` with `handler`. */
export function defineRoute<N extends RouteName>(
  app: FastifyInstance,
  ctx: CoordinatorContext,
  name: N,
  handler: RouteHandler<N>,
  extra: ExtraRouteOptions = {},
): void {
  const def: RouteDef = routes[name];
  const hasGroup = def.path.includes(':group');
  app.route({
    method: def.method,
    url: apiPrefix + def.path,
    schema: routeSchema(name, def),
    ...extra,
    handler: async (req, reply) => {
      const token = ctx.auth.bearerToken(req.headers.authorization);
      let user: UserRow | undefined;
      if (token !== undefined) user = await ctx.auth.authenticate(token);
      else if (req.headers.authorization !== undefined) {
        throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'Authorization must be "Bearer <token>"');
      }
      if (!user && def.access !== 'anonymous')
        throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'log in first');

      const params = parse('params', def.params, req.params) as Record<string, string> | undefined;
      const group =
        hasGroup && params?.group !== undefined ? await ctx.auth.requireGroup(params.group) : undefined;
      const membership = await checkAccess(ctx, def.access, user, group);
      const query = parse('query', def.query, req.query ?? {});
      const body = def.raw ? req.body : parse('body', def.body, req.body);

      const call = { user, params, query, body, group, membership, req, reply } as unknown as RouteCall<N>;
      const result = await handler(call);
      if (result === replied || reply.sent) return reply;
      if (result === undefined) return reply.code(204).send();
      return result;
    },
  });
}
