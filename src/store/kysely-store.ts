/**
 * The Store over Kysely: one implementation for SQLite (better-sqlite3) and PostgreSQL (pg), with the few
 * dialect differences (booleans, error shapes) kept in small helpers. Row mapping from snake_case columns
 * to the camelCase rows of store.ts happens here and nowhere else.
 */
import { randomUUID } from 'node:crypto';
import { Migrator, sql, type Kysely, type Transaction, type Selectable } from 'kysely';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import type { Logger } from '../logger.ts';
import { createMigrationProvider, type StoreDialect } from './migrations.ts';
import type {
  AgentRow, AuditRow, BlobInfo, BlobRow, DeliveryRow, DeliveryState, FileFilter, FileRow, GroupRow, JoinRequestRow,
  MembershipRow, RecipientRow, SessionRow, Store, UserRow,
} from './store.ts';

/** A boolean column: 0/1 on SQLite, boolean on PostgreSQL. */
type Bool = number | boolean;

interface UsersTable { id: string; username: string; password_hash: string; is_admin: Bool; created_at: number }
interface SessionsTable { token_hash: string; user_id: string; created_at: number; expires_at: number }
interface GroupsTable {
  id: string; name: string; multicast_address: string; multicast_port: number; created_by: string; created_at: number;
}
interface MembershipsTable { group_id: string; user_id: string; role: string; joined_at: number }
interface JoinRequestsTable {
  group_id: string; user_id: string; state: string; created_at: number; decided_by: string | null;
  decided_at: number | null;
}
interface BlobsTable {
  sha256: string; size: number; piece_size: number; piece_count: number; pieces: string; created_at: number;
}
interface FilesTable {
  id: string; group_id: string | null; name: string; type: string; sha256: string; size: number;
  shared_by: string; shared_at: number;
}
interface AuditTable {
  seq: import('kysely').Generated<number>; id: string; at: number; actor_id: string | null; action: string;
  group_name: string | null; target: string | null; detail: string | null;
}
interface DeliveriesTable {
  id: string; file_id: string; group_id: string | null; target_user_id: string | null; created_by: string;
  created_at: number; cancelled: Bool;
}
interface RecipientsTable {
  delivery_id: string; user_id: string; state: string; bytes: number; rate: number; transport: string | null;
  error: string | null; attempts: number; next_attempt_at: number | null; updated_at: number;
  delivered_at: number | null; detail: string | null;
}
interface AgentsTable {
  id: string; user_id: string; name: string; version: string; address: string; listen_url: string | null;
  connected_at: number; last_seen: number; online: Bool;
}
interface HoldersTable { sha256: string; agent_id: string }

/** The schema as Kysely sees it (column names as in the database). */
export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  groups: GroupsTable;
  memberships: MembershipsTable;
  join_requests: JoinRequestsTable;
  blobs: BlobsTable;
  files: FilesTable;
  audit: AuditTable;
  deliveries: DeliveriesTable;
  recipients: RecipientsTable;
  agents: AgentsTable;
  holders: HoldersTable;
}

type Db = Kysely<Database> | Transaction<Database>;

const pieceHexRe = /^[0-9a-f]{64}$/;

/** Default and largest number of audit entries returned by listAudit. */
const auditDefaultLimit = 100;
const auditMaxLimit = 10_000;

const toUser = (r: Selectable<UsersTable>): UserRow => ({
  id: r.id, username: r.username, passwordHash: r.password_hash, isAdmin: Boolean(r.is_admin),
  createdAt: Number(r.created_at),
});
const toSession = (r: Selectable<SessionsTable>): SessionRow => ({
  tokenHash: r.token_hash, userId: r.user_id, createdAt: Number(r.created_at), expiresAt: Number(r.expires_at),
});
const toGroup = (r: Selectable<GroupsTable>): GroupRow => ({
  id: r.id, name: r.name, multicastAddress: r.multicast_address, multicastPort: Number(r.multicast_port),
  createdBy: r.created_by, createdAt: Number(r.created_at),
});
const toMembership = (r: Selectable<MembershipsTable>): MembershipRow => ({
  groupId: r.group_id, userId: r.user_id, role: r.role as MembershipRow['role'], joinedAt: Number(r.joined_at),
});
const toJoinRequest = (r: Selectable<JoinRequestsTable>): JoinRequestRow => ({
  groupId: r.group_id, userId: r.user_id, state: r.state as JoinRequestRow['state'], createdAt: Number(r.created_at),
  decidedBy: r.decided_by, decidedAt: r.decided_at === null ? null : Number(r.decided_at),
});
const toFile = (r: Selectable<FilesTable>): FileRow => ({
  id: r.id, groupId: r.group_id, name: r.name, type: r.type, sha256: r.sha256, size: Number(r.size),
  sharedBy: r.shared_by, sharedAt: Number(r.shared_at),
});
const toAudit = (r: Omit<Selectable<AuditTable>, 'seq'>): AuditRow => ({
  id: r.id, at: Number(r.at), actorId: r.actor_id, action: r.action, groupName: r.group_name, target: r.target,
  detail: r.detail,
});
const toDelivery = (r: Selectable<DeliveriesTable>): DeliveryRow => ({
  id: r.id, fileId: r.file_id, groupId: r.group_id, targetUserId: r.target_user_id, createdBy: r.created_by,
  createdAt: Number(r.created_at), cancelled: Boolean(r.cancelled),
});
const toRecipient = (r: Selectable<RecipientsTable>): RecipientRow => ({
  deliveryId: r.delivery_id, userId: r.user_id, state: r.state as DeliveryState, bytes: Number(r.bytes),
  rate: Number(r.rate), transport: r.transport, error: r.error, attempts: Number(r.attempts),
  nextAttemptAt: r.next_attempt_at === null ? null : Number(r.next_attempt_at), updatedAt: Number(r.updated_at),
  deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at), detail: r.detail,
});
const toAgent = (r: Selectable<AgentsTable>): AgentRow => ({
  id: r.id, userId: r.user_id, name: r.name, version: r.version, address: r.address, listenUrl: r.listen_url,
  connectedAt: Number(r.connected_at), lastSeen: Number(r.last_seen), online: Boolean(r.online),
});

/** Escapes LIKE wildcards so user text matches literally (used with `escape '\'`). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c);
}

/** What a driver error says about constraints, on either dialect. */
interface ConstraintInfo {
  kind: 'unique' | 'foreign' | 'other';
  /** PostgreSQL: the constraint name; SQLite: the message (it names table.column for unique violations). */
  detail: string;
}

function constraintInfo(err: unknown): ConstraintInfo {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : '';
  if (e?.code === '23505') return { kind: 'unique', detail: String(e.constraint ?? message) };
  if (e?.code === '23503') return { kind: 'foreign', detail: String(e.constraint ?? message) };
  if (e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return { kind: 'unique', detail: message };
  }
  if (e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return { kind: 'foreign', detail: message };
  return { kind: 'other', detail: message };
}

/** Options of a KyselyStore. */
export interface KyselyStoreOptions {
  dialect: StoreDialect;
  logger: Logger;
}

/** The Store over a Kysely instance (or a transaction of one). Build it with createStore(). */
export class KyselyStore implements Store {
  readonly #db: Db;
  readonly #root: Kysely<Database> | undefined;
  readonly #dialect: StoreDialect;
  readonly #logger: Logger;
  #closing: Promise<void> | undefined;

  constructor(db: Kysely<Database>, options: KyselyStoreOptions);
  constructor(db: Transaction<Database>, options: KyselyStoreOptions, inTransaction: true);
  constructor(db: Db, options: KyselyStoreOptions, inTransaction = false) {
    this.#db = db;
    this.#root = inTransaction ? undefined : (db as Kysely<Database>);
    this.#dialect = options.dialect;
    this.#logger = options.logger;
  }

  #bool(v: boolean): Bool {
    return this.#dialect === 'postgres' ? v : v ? 1 : 0;
  }

  async migrate(): Promise<void> {
    if (!this.#root) throw new ShoalError(ErrorCode.INTERNAL, 'migrate() cannot run inside a transaction');
    const migrator = new Migrator({ db: this.#root, provider: createMigrationProvider(this.#dialect) });
    const { error, results } = await migrator.migrateToLatest();
    for (const r of results ?? []) {
      if (r.status === 'Success') this.#logger.info('migration applied', { migration: r.migrationName });
      else if (r.status === 'Error') this.#logger.error('migration failed', { migration: r.migrationName });
    }
    if (error) {
      throw new ShoalError(ErrorCode.INTERNAL, `database migration failed: ${(error as Error).message ?? error}`, undefined, {
        cause: error,
      });
    }
  }

  /** Closes the database (SQLite file or PostgreSQL pool); calling it again is harmless. */
  async close(): Promise<void> {
    if (!this.#root) throw new ShoalError(ErrorCode.INTERNAL, 'close() cannot run inside a transaction');
    this.#closing ??= this.#root.destroy();
    await this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    // Nested calls join the outer transaction: Kysely has no nested transactions, and a caller that
    // composes helpers should not have to know whether one of them opened a transaction already.
    if (!this.#root) return fn(this);
    const options = { dialect: this.#dialect, logger: this.#logger };
    return this.#root.transaction().execute((trx) => fn(new KyselyStore(trx, options, true)));
  }

  /**
   * Turns a foreign-key violation into the *_NOT_FOUND error of whatever was missing. PostgreSQL names the
   * constraint; SQLite does not, so there each candidate is checked with a query (harmless: a failed
   * statement does not abort an SQLite transaction, unlike PostgreSQL).
   */
  async #missing(err: unknown, candidates: Array<{ constraint: string; code: ErrorCode; what: string; exists: () => Promise<boolean> }>): Promise<never> {
    const info = constraintInfo(err);
    if (info.kind !== 'foreign') throw err;
    if (this.#dialect === 'postgres') {
      const hit = candidates.find((c) => c.constraint === info.detail);
      if (hit) throw new ShoalError(hit.code, `${hit.what} not found`);
    } else {
      for (const c of candidates) {
        if (!(await c.exists())) throw new ShoalError(c.code, `${c.what} not found`);
      }
    }
    throw new ShoalError(ErrorCode.NOT_FOUND, 'a referenced row does not exist', undefined, { cause: err });
  }

  #userExists = (id: string) => async () =>
    (await this.#db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  #groupExists = (id: string) => async () =>
    (await this.#db.selectFrom('groups').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;

  // ---- users and sessions ----

  async createUser(u: Omit<UserRow, 'id' | 'createdAt'>): Promise<UserRow> {
    const row: UserRow = { id: randomUUID(), createdAt: Date.now(), ...u };
    try {
      await this.#db
        .insertInto('users')
        .values({
          id: row.id, username: row.username, password_hash: row.passwordHash, is_admin: this.#bool(row.isAdmin),
          created_at: row.createdAt,
        })
        .execute();
    } catch (err) {
      if (constraintInfo(err).kind === 'unique') {
        throw new ShoalError(ErrorCode.USER_EXISTS, `user ${u.username} already exists`);
      }
      throw err;
    }
    return row;
  }

  async getUserById(id: string): Promise<UserRow | undefined> {
    const r = await this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toUser(r);
  }

  async getUserByName(username: string): Promise<UserRow | undefined> {
    const r = await this.#db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    return r && toUser(r);
  }

  async listUsers(): Promise<UserRow[]> {
    const rows = await this.#db.selectFrom('users').selectAll().orderBy('username').execute();
    return rows.map(toUser);
  }

  async setAdmin(userId: string, isAdmin: boolean): Promise<void> {
    const res = await this.#db
      .updateTable('users')
      .set({ is_admin: this.#bool(isAdmin) })
      .where('id', '=', userId)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new ShoalError(ErrorCode.USER_NOT_FOUND, 'user not found');
  }

  async deleteUser(userId: string): Promise<void> {
    const res = await this.#db.deleteFrom('users').where('id', '=', userId).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new ShoalError(ErrorCode.USER_NOT_FOUND, 'user not found');
  }

  async countUsers(): Promise<number> {
    const r = await this.#db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async createSession(s: SessionRow): Promise<void> {
    try {
      await this.#db
        .insertInto('sessions')
        .values({ token_hash: s.tokenHash, user_id: s.userId, created_at: s.createdAt, expires_at: s.expiresAt })
        .execute();
    } catch (err) {
      await this.#missing(err, [
        { constraint: 'sessions_user_fk', code: ErrorCode.USER_NOT_FOUND, what: 'user', exists: this.#userExists(s.userId) },
      ]);
    }
  }

  async getSession(tokenHash: string): Promise<SessionRow | undefined> {
    const r = await this.#db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toSession(r);
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.#db.deleteFrom('sessions').where('token_hash', '=', tokenHash).execute();
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    const res = await this.#db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  // ---- groups, members, requests ----

  async createGroup(g: Omit<GroupRow, 'id' | 'createdAt'>): Promise<GroupRow> {
    const row: GroupRow = { id: randomUUID(), createdAt: Date.now(), ...g };
    try {
      await this.#db
        .insertInto('groups')
        .values({
          id: row.id, name: row.name, multicast_address: row.multicastAddress, multicast_port: row.multicastPort,
          created_by: row.createdBy, created_at: row.createdAt,
        })
        .execute();
    } catch (err) {
      const info = constraintInfo(err);
      if (info.kind === 'unique') {
        if (info.detail.includes('multicast')) {
          throw new ShoalError(
            ErrorCode.MULTICAST_ADDRESS_TAKEN,
            `multicast address ${g.multicastAddress}:${g.multicastPort} is already used by another group`,
          );
        }
        throw new ShoalError(ErrorCode.GROUP_EXISTS, `group ${g.name} already exists`);
      }
      throw err;
    }
    return row;
  }

  async getGroupByName(name: string): Promise<GroupRow | undefined> {
    const r = await this.#db.selectFrom('groups').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toGroup(r);
  }

  async getGroupById(id: string): Promise<GroupRow | undefined> {
    const r = await this.#db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toGroup(r);
  }

  async listGroups(): Promise<GroupRow[]> {
    const rows = await this.#db.selectFrom('groups').selectAll().orderBy('name').execute();
    return rows.map(toGroup);
  }

  async deleteGroup(groupId: string): Promise<void> {
    const res = await this.#db.deleteFrom('groups').where('id', '=', groupId).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new ShoalError(ErrorCode.GROUP_NOT_FOUND, 'group not found');
  }

  async usedMulticast(): Promise<Array<{ address: string; port: number }>> {
    const rows = await this.#db
      .selectFrom('groups')
      .select(['multicast_address', 'multicast_port'])
      .orderBy('multicast_address')
      .orderBy('multicast_port')
      .execute();
    return rows.map((r) => ({ address: r.multicast_address, port: Number(r.multicast_port) }));
  }

  async addMember(m: MembershipRow): Promise<void> {
    try {
      await this.#db
        .insertInto('memberships')
        .values({ group_id: m.groupId, user_id: m.userId, role: m.role, joined_at: m.joinedAt })
        .execute();
    } catch (err) {
      if (constraintInfo(err).kind === 'unique') {
        throw new ShoalError(ErrorCode.ALREADY_MEMBER, 'already a member of this group');
      }
      await this.#missing(err, [
        { constraint: 'memberships_group_fk', code: ErrorCode.GROUP_NOT_FOUND, what: 'group', exists: this.#groupExists(m.groupId) },
        { constraint: 'memberships_user_fk', code: ErrorCode.USER_NOT_FOUND, what: 'user', exists: this.#userExists(m.userId) },
      ]);
    }
  }

  async removeMember(groupId: string, userId: string): Promise<void> {
    const res = await this.#db
      .deleteFrom('memberships')
      .where('group_id', '=', groupId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new ShoalError(ErrorCode.NOT_A_MEMBER, 'not a member of this group');
  }

  async getMembership(groupId: string, userId: string): Promise<MembershipRow | undefined> {
    const r = await this.#db
      .selectFrom('memberships')
      .selectAll()
      .where('group_id', '=', groupId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return r && toMembership(r);
  }

  async listMembers(groupId: string): Promise<Array<MembershipRow & { username: string }>> {
    const rows = await this.#db
      .selectFrom('memberships as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.group_id', 'm.user_id', 'm.role', 'm.joined_at', 'u.username'])
      .where('m.group_id', '=', groupId)
      .orderBy('u.username')
      .execute();
    return rows.map((r) => ({ ...toMembership(r), username: r.username }));
  }

  async listGroupsOfUser(userId: string): Promise<GroupRow[]> {
    const rows = await this.#db
      .selectFrom('groups as g')
      .innerJoin('memberships as m', 'm.group_id', 'g.id')
      .selectAll('g')
      .where('m.user_id', '=', userId)
      .orderBy('g.name')
      .execute();
    return rows.map(toGroup);
  }

  async countMembers(groupId: string): Promise<number> {
    const r = await this.#db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('group_id', '=', groupId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async upsertJoinRequest(r: JoinRequestRow): Promise<void> {
    const values = {
      state: r.state, created_at: r.createdAt, decided_by: r.decidedBy, decided_at: r.decidedAt,
    };
    try {
      await this.#db
        .insertInto('join_requests')
        .values({ group_id: r.groupId, user_id: r.userId, ...values })
        .onConflict((oc) => oc.columns(['group_id', 'user_id']).doUpdateSet(values))
        .execute();
    } catch (err) {
      await this.#missing(err, [
        { constraint: 'join_requests_group_fk', code: ErrorCode.GROUP_NOT_FOUND, what: 'group', exists: this.#groupExists(r.groupId) },
        { constraint: 'join_requests_user_fk', code: ErrorCode.USER_NOT_FOUND, what: 'user', exists: this.#userExists(r.userId) },
      ]);
    }
  }

  async getJoinRequest(groupId: string, userId: string): Promise<JoinRequestRow | undefined> {
    const r = await this.#db
      .selectFrom('join_requests')
      .selectAll()
      .where('group_id', '=', groupId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return r && toJoinRequest(r);
  }

  async listJoinRequests(filter: {
    groupIds?: string[];
    userId?: string;
    state?: JoinRequestRow['state'];
  }): Promise<JoinRequestRow[]> {
    if (filter.groupIds && filter.groupIds.length === 0) return [];
    let q = this.#db.selectFrom('join_requests').selectAll();
    if (filter.groupIds) q = q.where('group_id', 'in', filter.groupIds);
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    const rows = await q.orderBy('created_at').orderBy('group_id').orderBy('user_id').execute();
    return rows.map(toJoinRequest);
  }

  // ---- blobs and the catalogue ----

  async putBlob(b: BlobRow): Promise<void> {
    for (const p of b.pieces) {
      if (!pieceHexRe.test(p)) {
        throw new ShoalError(ErrorCode.VALIDATION_FAILED, 'piece hashes must be 64 lower-case hex characters');
      }
    }
    // Content-addressed: the same sha256 is the same bytes, so a second put keeps the first row.
    await this.#db
      .insertInto('blobs')
      .values({
        sha256: b.sha256, size: b.size, piece_size: b.pieceSize, piece_count: b.pieces.length,
        pieces: b.pieces.join(''), created_at: b.createdAt,
      })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
  }

  async getBlob(sha256: string): Promise<BlobRow | undefined> {
    const r = await this.#db.selectFrom('blobs').selectAll().where('sha256', '=', sha256).executeTakeFirst();
    if (!r) return undefined;
    const count = Number(r.piece_count);
    const pieces = new Array<string>(count);
    for (let i = 0; i < count; i++) pieces[i] = r.pieces.slice(i * 64, i * 64 + 64);
    return { sha256: r.sha256, size: Number(r.size), pieceSize: Number(r.piece_size), pieces, createdAt: Number(r.created_at) };
  }

  async getBlobInfo(sha256: string): Promise<BlobInfo | undefined> {
    const r = await this.#db
      .selectFrom('blobs')
      .select(['sha256', 'size', 'piece_size', 'piece_count', 'created_at'])
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    return (
      r && {
        sha256: r.sha256, size: Number(r.size), pieceSize: Number(r.piece_size), pieceCount: Number(r.piece_count),
        createdAt: Number(r.created_at),
      }
    );
  }

  async listOrphanBlobs(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('blobs as b')
      .select('b.sha256')
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('files as f').select('f.id').whereRef('f.sha256', '=', 'b.sha256'))),
      )
      .orderBy('b.sha256')
      .execute();
    return rows.map((r) => r.sha256);
  }

  async deleteBlob(sha256: string): Promise<boolean> {
    // Only while still orphaned: a share that reuses the bytes between listOrphanBlobs and here keeps them.
    const res = await this.#db
      .deleteFrom('blobs')
      .where('sha256', '=', sha256)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('files').select('files.id').where('files.sha256', '=', sha256))),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async createFile(f: Omit<FileRow, 'id'>): Promise<FileRow> {
    const row: FileRow = { id: randomUUID(), ...f };
    try {
      await this.#db
        .insertInto('files')
        .values({
          id: row.id, group_id: row.groupId, name: row.name, type: row.type, sha256: row.sha256, size: row.size,
          shared_by: row.sharedBy, shared_at: row.sharedAt,
        })
        .execute();
    } catch (err) {
      const groupId = f.groupId;
      await this.#missing(err, [
        {
          constraint: 'files_group_fk', code: ErrorCode.GROUP_NOT_FOUND, what: 'group',
          exists: groupId === null ? async () => true : this.#groupExists(groupId),
        },
      ]);
    }
    return row;
  }

  async getFile(fileId: string): Promise<FileRow | undefined> {
    const r = await this.#db.selectFrom('files').selectAll().where('id', '=', fileId).executeTakeFirst();
    return r && toFile(r);
  }

  async listFiles(groupId: string, filter: FileFilter): Promise<FileRow[]> {
    let q = this.#db.selectFrom('files').selectAll().where('group_id', '=', groupId);
    if (filter.search !== undefined && filter.search !== '') {
      // lower() on both sides: PostgreSQL's LIKE is case-sensitive; on SQLite lower() is replaced by a
      // Unicode-aware one (create-store.ts), so both dialects fold case the same way.
      const pattern = `%${escapeLike(filter.search.toLowerCase())}%`;
      q = q.where(sql<boolean>`lower(name) like ${pattern} escape '\\'`);
    }
    if (filter.type !== undefined && filter.type !== '') q = q.where('type', '=', filter.type.toLowerCase());
    if (filter.sharerId !== undefined) q = q.where('shared_by', '=', filter.sharerId);
    if (filter.since !== undefined) q = q.where('shared_at', '>=', filter.since);
    if (filter.minSize !== undefined) q = q.where('size', '>=', filter.minSize);
    if (filter.maxSize !== undefined) q = q.where('size', '<=', filter.maxSize);
    switch (filter.sort) {
      case 'name':
        q = q.orderBy(sql`lower(name)`).orderBy('name').orderBy('shared_at', 'desc');
        break;
      case 'size':
        q = q.orderBy('size').orderBy(sql`lower(name)`).orderBy('name');
        break;
      case 'date':
      case undefined:
        q = q.orderBy('shared_at', 'desc').orderBy(sql`lower(name)`).orderBy('name');
        break;
    }
    const rows = await q.orderBy('id').execute();
    return rows.map(toFile);
  }

  async deleteFile(fileId: string): Promise<void> {
    const res = await this.#db.deleteFrom('files').where('id', '=', fileId).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, 'file not found');
  }

  // ---- audit ----

  async addAudit(a: Omit<AuditRow, 'id'>): Promise<void> {
    await this.#db
      .insertInto('audit')
      .values({
        id: randomUUID(), at: a.at, actor_id: a.actorId, action: a.action, group_name: a.groupName, target: a.target,
        detail: a.detail,
      })
      .execute();
  }

  async listAudit(filter: { groupName?: string; limit?: number }): Promise<AuditRow[]> {
    const limit = Math.max(1, Math.min(auditMaxLimit, Math.floor(filter.limit ?? auditDefaultLimit)));
    let q = this.#db.selectFrom('audit').select(['id', 'at', 'actor_id', 'action', 'group_name', 'target', 'detail']);
    if (filter.groupName !== undefined) q = q.where('group_name', '=', filter.groupName);
    const rows = await q.orderBy('at', 'desc').orderBy('seq', 'desc').limit(limit).execute();
    return rows.map(toAudit);
  }

  // ---- deliveries ----

  async createDelivery(d: Omit<DeliveryRow, 'id' | 'cancelled'>): Promise<DeliveryRow> {
    const row: DeliveryRow = { id: randomUUID(), ...d, cancelled: false };
    await this.#db
      .insertInto('deliveries')
      .values({
        id: row.id, file_id: row.fileId, group_id: row.groupId, target_user_id: row.targetUserId,
        created_by: row.createdBy, created_at: row.createdAt, cancelled: this.#bool(false),
      })
      .execute();
    return row;
  }

  async getDelivery(id: string): Promise<DeliveryRow | undefined> {
    const r = await this.#db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDelivery(r);
  }

  async listDeliveries(filter: {
    groupId?: string;
    targetUserId?: string;
    includeCancelled?: boolean;
  }): Promise<DeliveryRow[]> {
    let q = this.#db.selectFrom('deliveries').selectAll();
    if (filter.groupId !== undefined) q = q.where('group_id', '=', filter.groupId);
    if (filter.targetUserId !== undefined) q = q.where('target_user_id', '=', filter.targetUserId);
    if (!filter.includeCancelled) q = q.where('cancelled', '=', this.#bool(false));
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return rows.map(toDelivery);
  }

  async cancelDeliveriesOfGroup(groupId: string): Promise<void> {
    await this.#db.updateTable('deliveries').set({ cancelled: this.#bool(true) }).where('group_id', '=', groupId).execute();
  }

  async cancelDelivery(deliveryId: string): Promise<void> {
    const res = await this.#db
      .updateTable('deliveries')
      .set({ cancelled: this.#bool(true) })
      .where('id', '=', deliveryId)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new ShoalError(ErrorCode.DELIVERY_NOT_FOUND, 'delivery not found');
  }

  async upsertRecipient(r: RecipientRow): Promise<void> {
    const values = {
      state: r.state, bytes: r.bytes, rate: r.rate, transport: r.transport, error: r.error, attempts: r.attempts,
      next_attempt_at: r.nextAttemptAt, updated_at: r.updatedAt, delivered_at: r.deliveredAt, detail: r.detail,
    };
    try {
      await this.#db
        .insertInto('recipients')
        .values({ delivery_id: r.deliveryId, user_id: r.userId, ...values })
        .onConflict((oc) => oc.columns(['delivery_id', 'user_id']).doUpdateSet(values))
        .execute();
    } catch (err) {
      await this.#missing(err, [
        {
          constraint: 'recipients_delivery_fk', code: ErrorCode.DELIVERY_NOT_FOUND, what: 'delivery',
          exists: async () =>
            (await this.#db.selectFrom('deliveries').select('id').where('id', '=', r.deliveryId).executeTakeFirst()) !==
            undefined,
        },
        { constraint: 'recipients_user_fk', code: ErrorCode.USER_NOT_FOUND, what: 'user', exists: this.#userExists(r.userId) },
      ]);
    }
  }

  async getRecipient(deliveryId: string, userId: string): Promise<RecipientRow | undefined> {
    const r = await this.#db
      .selectFrom('recipients')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return r && toRecipient(r);
  }

  async listRecipients(filter: { deliveryId?: string; userId?: string; states?: DeliveryState[] }): Promise<RecipientRow[]> {
    if (filter.states && filter.states.length === 0) return [];
    let q = this.#db.selectFrom('recipients').selectAll();
    if (filter.deliveryId !== undefined) q = q.where('delivery_id', '=', filter.deliveryId);
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    if (filter.states) q = q.where('state', 'in', filter.states);
    const rows = await q.orderBy('delivery_id').orderBy('user_id').execute();
    return rows.map(toRecipient);
  }

  // ---- agents and holders ----

  async upsertAgent(a: AgentRow): Promise<void> {
    const values = {
      user_id: a.userId, name: a.name, version: a.version, address: a.address, listen_url: a.listenUrl,
      connected_at: a.connectedAt, last_seen: a.lastSeen, online: this.#bool(a.online),
    };
    try {
      await this.#db
        .insertInto('agents')
        .values({ id: a.id, ...values })
        .onConflict((oc) => oc.column('id').doUpdateSet(values))
        .execute();
    } catch (err) {
      await this.#missing(err, [
        { constraint: 'agents_user_fk', code: ErrorCode.USER_NOT_FOUND, what: 'user', exists: this.#userExists(a.userId) },
      ]);
    }
  }

  async getAgent(id: string): Promise<AgentRow | undefined> {
    const r = await this.#db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toAgent(r);
  }

  async listAgents(filter: { online?: boolean; userId?: string }): Promise<AgentRow[]> {
    let q = this.#db.selectFrom('agents').selectAll();
    if (filter.online !== undefined) q = q.where('online', '=', this.#bool(filter.online));
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    const rows = await q.orderBy('name').orderBy('id').execute();
    return rows.map(toAgent);
  }

  async setHolder(sha256: string, agentId: string, holds: boolean): Promise<void> {
    if (!holds) {
      await this.#db.deleteFrom('holders').where('sha256', '=', sha256).where('agent_id', '=', agentId).execute();
      return;
    }
    try {
      await this.#db
        .insertInto('holders')
        .values({ sha256, agent_id: agentId })
        .onConflict((oc) => oc.columns(['sha256', 'agent_id']).doNothing())
        .execute();
    } catch (err) {
      await this.#missing(err, [
        {
          constraint: 'holders_agent_fk', code: ErrorCode.AGENT_NOT_FOUND, what: 'agent',
          exists: async () =>
            (await this.#db.selectFrom('agents').select('id').where('id', '=', agentId).executeTakeFirst()) !== undefined,
        },
      ]);
    }
  }

  async listHolders(sha256: string): Promise<string[]> {
    const rows = await this.#db.selectFrom('holders').select('agent_id').where('sha256', '=', sha256).orderBy('agent_id').execute();
    return rows.map((r) => r.agent_id);
  }
}
