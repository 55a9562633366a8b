/**
 * The one error type of Shoal. Every failure that crosses a module boundary is a ShoalError with a stable
 * `code`; callers branch on the code, the HTTP layer maps codes to statuses (coordinator/http-errors.ts) and
 * the CLI maps them to messages and exit codes.
 */

/** Stable error codes, grouped by the HTTP status the coordinator answers with. */
export const ErrorCode = {
  // 400
  BAD_REQUEST: 'BAD_REQUEST',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  INVALID_NAME: 'INVALID_NAME',
  INVALID_MULTICAST_ADDRESS: 'INVALID_MULTICAST_ADDRESS',
  MALFORMED_DATAGRAM: 'MALFORMED_DATAGRAM',
  MALFORMED_MESSAGE: 'MALFORMED_MESSAGE',
  // 401
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  TICKET_INVALID: 'TICKET_INVALID',
  TICKET_EXPIRED: 'TICKET_EXPIRED',
  // 403
  FORBIDDEN: 'FORBIDDEN',
  NOT_A_MEMBER: 'NOT_A_MEMBER',
  REGISTRATION_CLOSED: 'REGISTRATION_CLOSED',
  // 404
  NOT_FOUND: 'NOT_FOUND',
  USER_NOT_FOUND: 'USER_NOT_FOUND',
  GROUP_NOT_FOUND: 'GROUP_NOT_FOUND',
  FILE_NOT_FOUND: 'FILE_NOT_FOUND',
  REQUEST_NOT_FOUND: 'REQUEST_NOT_FOUND',
  DELIVERY_NOT_FOUND: 'DELIVERY_NOT_FOUND',
  AGENT_NOT_FOUND: 'AGENT_NOT_FOUND',
  PIECE_NOT_FOUND: 'PIECE_NOT_FOUND',
  // 409
  CONFLICT: 'CONFLICT',
  USER_EXISTS: 'USER_EXISTS',
  GROUP_EXISTS: 'GROUP_EXISTS',
  MULTICAST_ADDRESS_TAKEN: 'MULTICAST_ADDRESS_TAKEN',
  MULTICAST_POOL_EXHAUSTED: 'MULTICAST_POOL_EXHAUSTED',
  ALREADY_MEMBER: 'ALREADY_MEMBER',
  REQUEST_PENDING: 'REQUEST_PENDING',
  LAST_OWNER: 'LAST_OWNER',
  // 413
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  // 416
  RANGE_NOT_SATISFIABLE: 'RANGE_NOT_SATISFIABLE',
  // 429
  RATE_LIMITED: 'RATE_LIMITED',
  // 502/504 and local failures
  HASH_MISMATCH: 'HASH_MISMATCH',
  PEER_FAILED: 'PEER_FAILED',
  NOT_ANSWERING: 'NOT_ANSWERING',
  TLS_FINGERPRINT_MISMATCH: 'TLS_FINGERPRINT_MISMATCH',
  UNREACHABLE: 'UNREACHABLE',
  ABORTED: 'ABORTED',
  INTERNAL: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base error: a stable code, a human message, and optional structured details (never secrets). */
export class ShoalError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ShoalError';
    this.code = code;
    this.details = details;
  }
}

/** True when `err` is a ShoalError, optionally with the given code. */
export function isShoalError(err: unknown, code?: ErrorCode): err is ShoalError {
  return err instanceof ShoalError && (code === undefined || err.code === code);
}

/** The JSON body of every error answer of the API. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}
