/**
 * Exit codes of the `shoal` command, one per kind of failure, so scripts can branch without parsing text.
 * The mapping from ShoalError codes lives here and nowhere else.
 */
import { ErrorCode } from '../protocol/errors.ts';

/** Process exit codes. */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** Any failure not listed below (an internal error, a local I/O error). */
  GENERIC: 1,
  /** Bad command line or invalid input (unknown option, missing argument, a name or value the server refused). */
  USAGE: 2,
  /** Not logged in, wrong password, session expired. */
  AUTH: 3,
  /** Logged in but not allowed (not an admin, not an owner, not a member, registration closed). */
  FORBIDDEN: 4,
  /** A user, group, file or request that does not exist. */
  NOT_FOUND: 5,
  /** Already exists, already a member, address taken, last owner... */
  CONFLICT: 6,
  /** The coordinator cannot be reached, or its certificate does not match the pinned fingerprint. */
  NETWORK: 7,
  /** A downloaded file does not match its SHA-256. */
  HASH_MISMATCH: 8,
  /** Too many attempts: wait (Retry-After) and try again. */
  RATE_LIMITED: 9,
  /** A file larger than the server accepts, or a byte range outside the file. */
  TOO_LARGE: 10,
  /** Interrupted (Ctrl-C) or aborted. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code for a ShoalError code. */
export function exitCodeFor(code: ErrorCode): ExitCode {
  switch (code) {
    case ErrorCode.BAD_REQUEST:
    case ErrorCode.VALIDATION_FAILED:
    case ErrorCode.INVALID_NAME:
    case ErrorCode.INVALID_MULTICAST_ADDRESS:
    case ErrorCode.MALFORMED_DATAGRAM:
    case ErrorCode.MALFORMED_MESSAGE:
      return ExitCode.USAGE;
    case ErrorCode.UNAUTHENTICATED:
    case ErrorCode.INVALID_CREDENTIALS:
    case ErrorCode.SESSION_EXPIRED:
    case ErrorCode.TICKET_INVALID:
    case ErrorCode.TICKET_EXPIRED:
      return ExitCode.AUTH;
    case ErrorCode.FORBIDDEN:
    case ErrorCode.NOT_A_MEMBER:
    case ErrorCode.REGISTRATION_CLOSED:
      return ExitCode.FORBIDDEN;
    case ErrorCode.NOT_FOUND:
    case ErrorCode.USER_NOT_FOUND:
    case ErrorCode.GROUP_NOT_FOUND:
    case ErrorCode.FILE_NOT_FOUND:
    case ErrorCode.REQUEST_NOT_FOUND:
    case ErrorCode.DELIVERY_NOT_FOUND:
    case ErrorCode.AGENT_NOT_FOUND:
    case ErrorCode.PIECE_NOT_FOUND:
      return ExitCode.NOT_FOUND;
    case ErrorCode.CONFLICT:
    case ErrorCode.USER_EXISTS:
    case ErrorCode.GROUP_EXISTS:
    case ErrorCode.MULTICAST_ADDRESS_TAKEN:
    case ErrorCode.MULTICAST_POOL_EXHAUSTED:
    case ErrorCode.ALREADY_MEMBER:
    case ErrorCode.REQUEST_PENDING:
    case ErrorCode.LAST_OWNER:
      return ExitCode.CONFLICT;
    case ErrorCode.PAYLOAD_TOO_LARGE:
    case ErrorCode.RANGE_NOT_SATISFIABLE:
      return ExitCode.TOO_LARGE;
    case ErrorCode.RATE_LIMITED:
      return ExitCode.RATE_LIMITED;
    case ErrorCode.HASH_MISMATCH:
      return ExitCode.HASH_MISMATCH;
    case ErrorCode.PEER_FAILED:
    case ErrorCode.NOT_ANSWERING:
    case ErrorCode.TLS_FINGERPRINT_MISMATCH:
    case ErrorCode.UNREACHABLE:
      return ExitCode.NETWORK;
    case ErrorCode.ABORTED:
      return ExitCode.INTERRUPTED;
    case ErrorCode.INTERNAL:
      return ExitCode.GENERIC;
    default:
      return ExitCode.GENERIC;
  }
}
