/**
 * Everything a route handler (or the WebSocket hub) needs, built once per coordinator at start():
 * the store, a logger, the frozen options, the blob store, the event bus, the ticket key and the
 * authentication helpers.
 */
import type { Store, UserRow, GroupRow, MembershipRow } from '../store/store.ts';
import type { Logger } from '../logger.ts';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import { hashToken, isWellFormedToken } from '../crypto/token.ts';
import type { BlobStore } from './blob-store.ts';
import type { EventBus } from './event-bus.ts';
import type { LoginLimiter } from './login-limiter.ts';
import type { TicketKeys } from './tls-material.ts';

export type { CoordinatorEvent, EventBus } from './event-bus.ts';
export type { BlobStore } from './blob-store.ts';

/** User knobs of a coordinator. Sizes in bytes. */
export interface CoordinatorOptions {
  /** Directory for the certificate, keys, blobs and temp files (created when missing). */
  dataDir: string;
  /** Listen address (default 0.0.0.0; tests use 127.0.0.1). */
  host?: string;
  /** Listen port; 0 = any free port (default 0). */
  port?: number;
  /** A real certificate (PEM); otherwise a self-signed one is created in dataDir. */
  tls?: { cert: string; key: string };
  /** Whether anyone may create an account (default true). */
  registration?: boolean;
  /** Password of the `admin` account when it is created (else SHOAL_ADMIN_PASSWORD, else random). */
  adminPassword?: string;
  /** Piece size of new uploads (default Limits.pieceBytes, 4 MiB). */
  pieceSize?: number;
  /** Directory of the built web UI (web/dist); served with an SPA fallback when it holds index.html. */
  webRoot?: string;
  /** Failed logins per user / per address per minute before 429 (defaults 5 / 20). */
  loginFailuresPerUser?: number;
  loginFailuresPerAddress?: number;
  /** Agent heartbeat interval, ms (default SHOAL_HEARTBEAT_MS, else Limits.heartbeatMs). */
  heartbeatMs?: number;
  /** Multicast deliveries (default on, with the sender's defaults). */
  multicast?: CoordinatorMulticastOptions;
}

/** The multicast sender's knobs (`shoal server --multicast-*`). Rates in bits/s on the wire. */
export interface CoordinatorMulticastOptions {
  /** False: group deliveries go by the swarm only (default true, or SHOAL_MULTICAST=off). */
  enabled?: boolean;
  /** Rate ceiling (default SHOAL_MULTICAST_RATE_MBIT, else 200 Mbit/s); `push --rate` overrides it per transfer. */
  rateBps?: number;
  /** Floor of the adaptive rate (default ceiling / 8). */
  minRateBps?: number;
  /** Local interface address to send from (default SHOAL_MULTICAST_INTERFACE, else the kernel's route). */
  interface?: string;
  /** Multicast TTL (default 1: the local link). */
  ttl?: number;
  /** Most passes per transfer (default SHOAL_MULTICAST_MAX_PASSES, else 8). */
  maxPasses?: number;
}

/** The options with defaults filled in. */
export interface ResolvedOptions extends Readonly<
  Required<Omit<CoordinatorOptions, 'tls' | 'adminPassword' | 'webRoot' | 'heartbeatMs' | 'multicast'>>
> {
  readonly heartbeatMs?: number;
  readonly multicast?: Readonly<CoordinatorMulticastOptions>;
  readonly tls?: { cert: string; key: string };
  readonly adminPassword?: string;
  readonly webRoot?: string;
}

/** Authentication and authorization helpers shared by routes and the WebSocket hub. */
export interface AuthHelpers {
  /** The user owning a bearer token; throws UNAUTHENTICATED (unknown/malformed) or SESSION_EXPIRED. */
  authenticate(token: string): Promise<UserRow>;
  /** The token from an `Authorization: Bearer …` header value, or undefined. */
  bearerToken(header: string | undefined): string | undefined;
  /** The group by name; throws GROUP_NOT_FOUND. */
  requireGroup(name: string): Promise<GroupRow>;
  /** The user's membership of a group, or undefined (admins are not implicitly members). */
  membership(group: GroupRow, user: UserRow): Promise<MembershipRow | undefined>;
  /** Throws NOT_A_MEMBER unless the user is a member or owner of the group, or an admin. */
  requireMember(group: GroupRow, user: UserRow): Promise<MembershipRow | undefined>;
  /** Throws FORBIDDEN unless the user owns the group or is an admin. */
  requireOwner(group: GroupRow, user: UserRow): Promise<MembershipRow | undefined>;
}

export interface CoordinatorContext {
  readonly store: Store;
  readonly logger: Logger;
  readonly options: ResolvedOptions;
  readonly blobs: BlobStore;
  readonly events: EventBus;
  readonly auth: AuthHelpers;
  readonly loginLimiter: LoginLimiter;
  /** Ed25519 key that signs piece tickets. */
  readonly ticketKeys: TicketKeys;
  /** SHA-256 fingerprint of the TLS certificate (`AB:CD:…`). */
  readonly fingerprint: string;
  /** Server version (package.json). */
  readonly version: string;
  /** Deletes blobs no catalogue file refers to any more (bytes and rows); never throws. */
  collectGarbage(): Promise<void>;
}

/** Builds the auth helpers over a store. */
export function createAuthHelpers(deps: { store: Store }): AuthHelpers {
  const { store } = deps;
  const membership = (group: GroupRow, user: UserRow) => store.getMembership(group.id, user.id);
  return {
    async authenticate(token) {
      if (!isWellFormedToken(token)) throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'invalid token');
      const session = await store.getSession(hashToken(token));
      if (!session) throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'invalid or revoked token');
      if (session.expiresAt <= Date.now()) {
        await store.deleteSession(session.tokenHash);
        throw new ShoalError(ErrorCode.SESSION_EXPIRED, 'session expired; log in again');
      }
      const user = await store.getUserById(session.userId);
      if (!user) throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'invalid or revoked token');
      return user;
    },
    bearerToken(header) {
      if (!header) return undefined;
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      return m ? m[1] : undefined;
    },
    async requireGroup(name) {
      const group = await store.getGroupByName(name);
      if (!group) throw new ShoalError(ErrorCode.GROUP_NOT_FOUND, `no group named ${name}`);
      return group;
    },
    membership,
    async requireMember(group, user) {
      const m = await membership(group, user);
      if (!m && !user.isAdmin) throw new ShoalError(ErrorCode.NOT_A_MEMBER, `not a member of ${group.name}`);
      return m;
    },
    async requireOwner(group, user) {
      const m = await membership(group, user);
      if (m?.role !== 'owner' && !user.isAdmin) {
        throw new ShoalError(ErrorCode.FORBIDDEN, `only an owner of ${group.name} or an admin may do this`);
      }
      return m;
    },
  };
}
