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
  createUser(u: Omit<UserRow, 'id' | 'createdAt'>): Promise<UserRow>;
  getUserById(id: string): Promise<UserRow | undefined>;
  getUserByName(username: string): Promise<UserRow | undefined>;
  listUsers(): Promise<UserRow[]>;
  setAdmin(userId: string, isAdmin: boolean): Promise<void>;
  deleteUser(userId: string): Promise<void>;
  countUsers(): Promise<number>;
  createSession(s: SessionRow): Promise<void>;
  getSession(tokenHash: string): Promise<SessionRow | undefined>;
  deleteSession(tokenHash: string): Promise<void>;
  deleteExpiredSessions(now: number): Promise<number>;

  // groups, members, requests
  createGroup(g: Omit<GroupRow, 'id' | 'createdAt'>): Promise<GroupRow>;
  getGroupByName(name: string): Promise<GroupRow | undefined>;
  getGroupById(id: string): Promise<GroupRow | undefined>;
  listGroups(): Promise<GroupRow[]>;
  deleteGroup(groupId: string): Promise<void>;
  /** Multicast address:port pairs in use, for the pool. */
  usedMulticast(): Promise<Array<{ address: string; port: number }>>;
  addMember(m: MembershipRow): Promise<void>;
  removeMember(groupId: string, userId: string): Promise<void>;
  getMembership(groupId: string, userId: string): Promise<MembershipRow | undefined>;
  listMembers(groupId: string): Promise<Array<MembershipRow & { username: string }>>;
  listGroupsOfUser(userId: string): Promise<GroupRow[]>;
  countMembers(groupId: string): Promise<number>;
  upsertJoinRequest(r: JoinRequestRow): Promise<void>;
  getJoinRequest(groupId: string, userId: string): Promise<JoinRequestRow | undefined>;
  listJoinRequests(filter: { groupIds?: string[]; userId?: string; state?: JoinRequestRow['state'] }): Promise<JoinRequestRow[]>;

  // blobs and the catalogue
  putBlob(b: BlobRow): Promise<void>;
  getBlob(sha256: string): Promise<BlobRow | undefined>;
  /** Blobs no file refers to any more (for the garbage collector). */
  listOrphanBlobs(): Promise<string[]>;
  deleteBlob(sha256: string): Promise<void>;
  createFile(f: Omit<FileRow, 'id'>): Promise<FileRow>;
  getFile(fileId: string): Promise<FileRow | undefined>;
  listFiles(groupId: string, filter: FileFilter): Promise<FileRow[]>;
  deleteFile(fileId: string): Promise<void>;

  // audit
  addAudit(a: Omit<AuditRow, 'id'>): Promise<void>;
  listAudit(filter: { groupName?: string; limit?: number }): Promise<AuditRow[]>;

  // deliveries
  createDelivery(d: Omit<DeliveryRow, 'id' | 'cancelled'>): Promise<DeliveryRow>;
  getDelivery(id: string): Promise<DeliveryRow | undefined>;
  listDeliveries(filter: { groupId?: string; targetUserId?: string; includeCancelled?: boolean }): Promise<DeliveryRow[]>;
  cancelDeliveriesOfGroup(groupId: string): Promise<void>;
  /** Marks one delivery cancelled (its recipients rows stay as history). */
  cancelDelivery(deliveryId: string): Promise<void>;
  upsertRecipient(r: RecipientRow): Promise<void>;
  getRecipient(deliveryId: string, userId: string): Promise<RecipientRow | undefined>;
  listRecipients(filter: { deliveryId?: string; userId?: string; states?: DeliveryState[] }): Promise<RecipientRow[]>;

  // agents and holders
  upsertAgent(a: AgentRow): Promise<void>;
  getAgent(id: string): Promise<AgentRow | undefined>;
  listAgents(filter: { online?: boolean; userId?: string }): Promise<AgentRow[]>;
  setHolder(sha256: string, agentId: string, holds: boolean): Promise<void>;
  listHolders(sha256: string): Promise<string[]>; // agent ids
}
