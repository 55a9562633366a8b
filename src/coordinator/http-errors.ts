/**
 * The one place that maps error codes to HTTP statuses, and the Fastify error and not-found handlers that
 * answer `{ error: { code, message } }`. Unknown errors become 500 INTERNAL without their message.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { ErrorCode, ShoalError, type ErrorBody } from '../protocol/errors.ts';
import type { Logger } from '../logger.ts';

const statusByCode: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_NAME: 400,
  INVALID_MULTICAST_ADDRESS: 400,
  MALFORMED_DATAGRAM: 400,
  MALFORMED_MESSAGE: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  SESSION_EXPIRED: 401,
  TICKET_INVALID: 401,
  TICKET_EXPIRED: 401,
  FORBIDDEN: 403,
  NOT_A_MEMBER: 403,
  REGISTRATION_CLOSED: 403,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  GROUP_NOT_FOUND: 404,
  FILE_NOT_FOUND: 404,
  REQUEST_NOT_FOUND: 404,
  DELIVERY_NOT_FOUND: 404,
  AGENT_NOT_FOUND: 404,
  PIECE_NOT_FOUND: 404,
  CONFLICT: 409,
  USER_EXISTS: 409,
  GROUP_EXISTS: 409,
  MULTICAST_ADDRESS_TAKEN: 409,
  MULTICAST_POOL_EXHAUSTED: 409,
  ALREADY_MEMBER: 409,
  REQUEST_PENDING: 409,
  LAST_OWNER: 409,
  PAYLOAD_TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  HASH_MISMATCH: 502,
  PEER_FAILED: 502,
  NOT_ANSWERING: 504,
  TLS_FINGERPRINT_MISMATCH: 502,
  UNREACHABLE: 502,
  ABORTED: 400,
  INTERNAL: 500,
};

/** HTTP status for an error code (500 for codes added later without a mapping). */
export function httpStatusOf(code: ErrorCode): number {
  return statusByCode[code] ?? 500;
}

/** The JSON body for an error. Details are included only for validation errors and rate limits. */
export function errorBody(err: ShoalError): ErrorBody {
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.details && (err.code === ErrorCode.VALIDATION_FAILED || err.code === ErrorCode.RATE_LIMITED)) {
    body.error.details = err.details;
  }
  return body;
}

/** Turns anything thrown in a request into a ShoalError (Fastify's own errors by their codes). */
export function toShoalError(err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  const fe = err as Partial<FastifyError> & { type?: string };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ShoalError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body too large');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ShoalError(ErrorCode.BAD_REQUEST, 'malformed JSON body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ShoalError(
        ErrorCode.BAD_REQUEST,
        fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported content type' : 'bad content length',
      );
  }
  if (err instanceof SyntaxError && fe.statusCode === 400)
    return new ShoalError(ErrorCode.BAD_REQUEST, 'malformed JSON body');
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new ShoalError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body too large');
    if (status === 404) return new ShoalError(ErrorCode.NOT_FOUND, 'not found');
    if (status === 429) return new ShoalError(ErrorCode.RATE_LIMITED, 'too many requests');
    return new ShoalError(ErrorCode.BAD_REQUEST, 'bad request');
  }
  return new ShoalError(ErrorCode.INTERNAL, 'internal error');
}

/** Installs the error handler on `app` (and, for 500s, logs the cause). */
export function installErrorHandler(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err, req, reply) => {
    const shoal = toShoalError(err);
    const status = httpStatusOf(shoal.code);
    if (status >= 500)
      logger.error('request failed', {
        method: req.method,
        url: req.routeOptions.url,
        err,
        stack: (err as Error).stack,
      });
    else logger.debug('request refused', { method: req.method, url: req.routeOptions.url, code: shoal.code });
    if (shoal.code === ErrorCode.RATE_LIMITED && typeof shoal.details?.retryAfterS === 'number') {
      reply.header('retry-after', String(shoal.details.retryAfterS));
    }
    // A half-read upload body would otherwise keep the socket busy; answer and close.
    if (status === 413 || shoal.code === ErrorCode.ABORTED || !req.raw.complete)
      reply.header('connection', 'close');
    void reply.code(status).type('application/json; charset=utf-8').send(errorBody(shoal));
  });
}
