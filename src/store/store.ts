/**
 * The Store: everything the coordinator keeps, behind one small interface. Implementations live beside
 * it (Kysely over better-sqlite3 or pg); callers get one from `createStore({ url })` in create-store.ts.
 * Ids are random strings chosen by the store; times are epoch ms. Methods that look something up return
 * `undefined` when it does not exist; methods that must find it throw ShoalError with a *_NOT_FOUND code;
 * uniqueness violations throw the matching *_EXISTS / *_TAKEN code.
 */

export interface UserRow {
  id: string;
  username: string;
  passwordHash: string;
  isAdmin: boolean;
  createdAt: number;
}

export interface SessionRow {
  tokenHash: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
}

export interface GroupRow {
  id: string;
  name: string;
  multicastAddress: string;
  multicastPort: number;
  createdBy: string; // user id
  createdAt: number;
}

export interface MembershipRow {
  groupId: string;
  userId: string;
  role: 'owner' | 'member';
  joinedAt: number;
}

export interface JoinRequestRow {
  groupId: string;
  userId: string;
  state: 'pending' | 'approved' | 'denied';
  createdAt: number;
  decidedBy: string | null; // user id
  decidedAt: number | null;
}

/** Content-addressed bytes held by the coordinator. `pieces` are the hex SHA-256 of each piece. */
export interface BlobRow {
  sha256: string;
  size: number;
  pieceSize: number;
  pieces: string[];
  createdAt: number;
}

/** A blob without its piece hashes (cheap to read for listings). */
export interface BlobInfo {
  sha256: string;
  size: number; // bytes
  pieceSize: number; // bytes
  pieceCount: number;
  createdAt: number;
}

export interface FileRow {
  id: string;
  groupId: string | null; // null for a direct (1:1) delivery outside any group
  name: string;
  type: string;
  sha256: string;
  size: number;
  sharedBy: string; // user id
  sharedAt: number;
}

/**
 * Catalogue query. `search`: case-insensitive substring of the name (wildcards literal); `type`: exact,
 * compared in lower case; `since`: sharedAt >= since (epoch ms); sizes inclusive (bytes). `sort`: name
 * (case-insensitive, A→Z), size (smallest first) or date (newest first, the default).
 */
export interface FileFilter {
  search?: string;
  type?: string;
  sharerId?: string;
  since?: number;
  minSize?: number;
  maxSize?: number;
  sort?: 'name' | 'size' | 'date';
}

export interface AuditRow {
  id: string;
  at: number;
  actorId: string | null;
  action: string;
  groupName: string | null;
  target: string | null;
  detail: string | null;
}

export type DeliveryState = 'pending' | 'receiving' | 'delivered' | 'failed';

export interface DeliveryRow {
  id: string;
  fileId: string;
  groupId: string | null;
  targetUserId: string | null; // set for a 1:1 send
  createdBy: string;
  createdAt: number;
  cancelled: boolean;
}

export interface RecipientRow {
  deliveryId: string;
  userId: string;
  state: DeliveryState;
  bytes: number;
  rate: number; // bytes/s
  transport: string | null; // 'multicast' | 'swarm' | 'repair' …
  error: string | null;
  attempts: number;
  nextAttemptAt: number | null;
  updatedAt: number;
  deliveredAt: number | null;
  detail: string | null; // JSON: bytes per source, passes, loss
}

export interface AgentRow {
  id: string;
  userId: string;
  name: string;
  version: string;
  address: string;
  listenUrl: string | null;
  connectedAt: number;
  lastSeen: number;
  online: boolean;
}

export interface Store {
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Runs `fn` in one transaction; the store passed in must be used for every call inside. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;

  // users and sessions
  /** Throws USER_EXISTS when the username is taken (exact match). */
  createUser(u: Omit<UserRow, 'id' | 'createdAt'>): Promise<UserRow>;
  getUserById(id: string): Promise<UserRow | undefined>;
  getUserByName(username: string): Promise<UserRow | undefined>;
  /** Sorted by username. */
  listUsers(): Promise<UserRow[]>;
  /** Throws USER_NOT_FOUND. */
  setAdmin(userId: string, isAdmin: boolean): Promise<void>;
  /** Also removes their memberships, join requests, sessions, agents (and holder rows) and recipient rows. Throws USER_NOT_FOUND. */
  deleteUser(userId: string): Promise<void>;
  countUsers(): Promise<number>;
  /** Throws USER_NOT_FOUND for an unknown user. */
  createSession(s: SessionRow): Promise<void>;
  /** Returns expired sessions too; the caller checks expiresAt. */
  getSession(tokenHash: string): Promise<SessionRow | undefined>;
  /** No error when it is already gone. */
  deleteSession(tokenHash: string): Promise<void>;
  /** Deletes sessions with expiresAt <= now (epoch ms); returns how many. */
  deleteExpiredSessions(now: number): Promise<number>;

  // groups, members, requests
  /** Throws GROUP_EXISTS (name) or MULTICAST_ADDRESS_TAKEN (address and port both in use). */
  createGroup(g: Omit<GroupRow, 'id' | 'createdAt'>): Promise<GroupRow>;
  getGroupByName(name: string): Promise<GroupRow | undefined>;
  getGroupById(id: string): Promise<GroupRow | undefined>;
  /** Sorted by name. */
  listGroups(): Promise<GroupRow[]>;
  /**
   * Also removes its memberships, join requests and catalogue (files; the blobs become orphans). Deliveries
   * stay as history: cancel them first (cancelDeliveriesOfGroup). Throws GROUP_NOT_FOUND.
   */
  deleteGroup(groupId: string): Promise<void>;
  /** Multicast address:port pairs in use, for the pool. */
  usedMulticast(): Promise<Array<{ address: string; port: number }>>;
  /** Throws ALREADY_MEMBER, GROUP_NOT_FOUND or USER_NOT_FOUND. */
  addMember(m: MembershipRow): Promise<void>;
  /** Throws NOT_A_MEMBER when there is no such membership. */
  removeMember(groupId: string, userId: string): Promise<void>;
  getMembership(groupId: string, userId: string): Promise<MembershipRow | undefined>;
  /** Sorted by username. */
  listMembers(groupId: string): Promise<Array<MembershipRow & { username: string }>>;
  /** Sorted by group name. */
  listGroupsOfUser(userId: string): Promise<GroupRow[]>;
  countMembers(groupId: string): Promise<number>;
  /** Inserts or replaces the (group, user) request. Throws GROUP_NOT_FOUND or USER_NOT_FOUND. */
  upsertJoinRequest(r: JoinRequestRow): Promise<void>;
  getJoinRequest(groupId: string, userId: string): Promise<JoinRequestRow | undefined>;
  /** Oldest first; an empty groupIds list matches nothing. */
  listJoinRequests(filter: { groupIds?: string[]; userId?: string; state?: JoinRequestRow['state'] }): Promise<JoinRequestRow[]>;

  // blobs and the catalogue
  /** Keeps the existing row when the sha256 is known. Throws VALIDATION_FAILED unless every piece is 64 lower-case hex. */
  putBlob(b: BlobRow): Promise<void>;
  getBlob(sha256: string): Promise<BlobRow | undefined>;
  /** Like getBlob without reading the piece hashes (up to 1 MiB of text for 64 GiB). */
  getBlobInfo(sha256: string): Promise<BlobInfo | undefined>;
  /** Blobs no file refers to any more (for the garbage collector). */
  listOrphanBlobs(): Promise<string[]>;
  /**
   * Deletes the blob row only while no file refers to it; true when deleted. A false answer means a share
   * reused the bytes since listOrphanBlobs(): keep them on disk.
   */
  deleteBlob(sha256: string): Promise<boolean>;
  /** Throws GROUP_NOT_FOUND for an unknown group. */
  createFile(f: Omit<FileRow, 'id'>): Promise<FileRow>;
  getFile(fileId: string): Promise<FileRow | undefined>;
  /** The group's files matching `filter` (see FileFilter). */
  listFiles(groupId: string, filter: FileFilter): Promise<FileRow[]>;
  /** Throws FILE_NOT_FOUND. */
  deleteFile(fileId: string): Promise<void>;

  // audit
  addAudit(a: Omit<AuditRow, 'id'>): Promise<void>;
  /** Newest first; `limit` defaults to 100 (at most 10000). */
  listAudit(filter: { groupName?: string; limit?: number }): Promise<AuditRow[]>;

  // deliveries
  createDelivery(d: Omit<DeliveryRow, 'id' | 'cancelled'>): Promise<DeliveryRow>;
  getDelivery(id: string): Promise<DeliveryRow | undefined>;
  /** Oldest first; cancelled ones only with includeCancelled. */
  listDeliveries(filter: { groupId?: string; targetUserId?: string; includeCancelled?: boolean }): Promise<DeliveryRow[]>;
  cancelDeliveriesOfGroup(groupId: string): Promise<void>;
  /** Marks one delivery cancelled (its recipients rows stay as history). Throws DELIVERY_NOT_FOUND. */
  cancelDelivery(deliveryId: string): Promise<void>;
  /** Inserts or replaces the (delivery, user) row. Throws DELIVERY_NOT_FOUND or USER_NOT_FOUND. */
  upsertRecipient(r: RecipientRow): Promise<void>;
  getRecipient(deliveryId: string, userId: string): Promise<RecipientRow | undefined>;
  /** An empty states list matches nothing. */
  listRecipients(filter: { deliveryId?: string; userId?: string; states?: DeliveryState[] }): Promise<RecipientRow[]>;

  // agents and holders
  /** Inserts or replaces the agent by id. Throws USER_NOT_FOUND. */
  upsertAgent(a: AgentRow): Promise<void>;
  getAgent(id: string): Promise<AgentRow | undefined>;
  listAgents(filter: { online?: boolean; userId?: string }): Promise<AgentRow[]>;
  /** Idempotent both ways. Throws AGENT_NOT_FOUND when adding for an unknown agent. */
  setHolder(sha256: string, agentId: string, holds: boolean): Promise<void>;
  listHolders(sha256: string): Promise<string[]>; // agent ids
}
