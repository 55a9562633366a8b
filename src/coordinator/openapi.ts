/**
 * OpenAPI for /api/docs, generated from the zod schemas of the route table. Fastify gets these JSON schemas
 * for documentation only: validation is done with zod in define-route.ts, so the app installs a validator
 * compiler that accepts everything and a plain JSON serializer.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RouteDef } from '../protocol/api.ts';

type JsonSchema = Record<string, unknown>;

function toJson(schema: z.ZodType, io: 'input' | 'output'): JsonSchema | undefined {
  try {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-7' }) as JsonSchema;
    delete json.$schema;
    return json;
  } catch {
    return undefined;
  }
}

/** The Fastify `schema` object of a route: tags, summary, params, query, body and 200 answer. */
export function routeSchema(name: string, def: RouteDef): JsonSchema {
  const tag = def.path.split('/')[1] ?? 'api';
  const schema: JsonSchema = { operationId: name, summary: def.summary, tags: [tag] };
  if (def.access !== 'anonymous') schema.security = [{ bearer: [] }];
  if (def.params) schema.params = toJson(def.params, 'input');
  if (def.query) schema.querystring = toJson(def.query, 'input');
  if (def.body) {
    const body = toJson(def.body, 'input');
    // addMember's body is optional; OpenAPI wants an object here.
    if (body && body.type === 'object') schema.body = body;
    else if (body?.anyOf) schema.body = (body.anyOf as JsonSchema[]).find((s) => s.type === 'object');
  }
  if (def.raw) {
    schema.consumes = ['application/octet-stream'];
  }
  const response: JsonSchema = {};
  if (def.response) response[200] = toJson(def.response, 'output') ?? {};
  else if (def.stream) response[200] = { description: 'the bytes', type: 'string', format: 'binary' };
  else response[204] = { description: 'done', type: 'null' };
  schema.response = response;
  schema.description = `Access: ${def.access}.`;
  return schema;
}

/** Makes Fastify skip its own validation and serialization (zod does the validating). */
export function disableFastifySchemas(app: FastifyInstance): void {
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}

/** Registers @fastify/swagger and @fastify/swagger-ui at /api/docs (JSON at /api/docs/json). */
export async function registerOpenApi(app: FastifyInstance, info: { version: string }): Promise<void> {
  const swagger = (await import('@fastify/swagger')).default;
  const swaggerUi = (await import('@fastify/swagger-ui')).default;
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Shoal coordinator API',
        version: info.version,
        description: 'REST API under /api/v1. Errors are { error: { code, message } }.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
}
