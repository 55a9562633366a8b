/**
 * Schema migrations of the Store, in code (no files on disk), for both SQLite and PostgreSQL. The two
 * dialects share one schema; only a few column types differ (booleans, the audit sequence). Migrations are
 * append-only: never edit one that has shipped, add the next one instead.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/** The SQL dialects the store speaks. */
export type StoreDialect = 'sqlite' | 'postgres';

/** Column type names per dialect. `bigint` is an integer on SQLite (type affinity) and int8 on PostgreSQL. */
function types(dialect: StoreDialect) {
  return {
    bool: dialect === 'postgres' ? ('boolean' as const) : ('integer' as const),
    int: 'integer' as const,
    big: 'bigint' as const,
    real: 'double precision' as const,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema types
type AnyDb = Kysely<any>;

/** All migrations of the store, keyed by name (applied in name order). */
export function storeMigrations(dialect: StoreDialect): Record<string, Migration> {
  const t = types(dialect);
  return {
    '0001_initial': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('is_admin', t.bool, (c) => c.notNull())
          .addColumn('created_at', t.big, (c) => c.notNull())
          .addUniqueConstraint('users_username_unique', ['username'])
          .execute();

        await db.schema
          .createTable('sessions')
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('created_at', t.big, (c) => c.notNull())
          .addColumn('expires_at', t.big, (c) => c.notNull())
          .addForeignKeyConstraint('sessions_user_fk', ['user_id'], 'users', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();
        await db.schema.createIndex('sessions_expires_idx').on('sessions').column('expires_at').execute();

        // created_by carries no foreign key: a group outlives the admin who made it.
        await db.schema
          .createTable('groups')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('multicast_address', 'text', (c) => c.notNull())
          .addColumn('multicast_port', t.int, (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', t.big, (c) => c.notNull())
          .addUniqueConstraint('groups_name_unique', ['name'])
          .addUniqueConstraint('groups_multicast_unique', ['multicast_address', 'multicast_port'])
          .execute();

        await db.schema
          .createTable('memberships')
          .addColumn('group_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('joined_at', t.big, (c) => c.notNull())
          .addPrimaryKeyConstraint('memberships_pk', ['group_id', 'user_id'])
          .addForeignKeyConstraint('memberships_group_fk', ['group_id'], 'groups', ['id'], (c) => c.onDelete('cascade'))
          .addForeignKeyConstraint('memberships_user_fk', ['user_id'], 'users', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('memberships_user_idx').on('memberships').column('user_id').execute();

        await db.schema
          .createTable('join_requests')
          .addColumn('group_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('created_at', t.big, (c) => c.notNull())
          .addColumn('decided_by', 'text')
          .addColumn('decided_at', t.big)
          .addPrimaryKeyConstraint('join_requests_pk', ['group_id', 'user_id'])
          .addForeignKeyConstraint('join_requests_group_fk', ['group_id'], 'groups', ['id'], (c) => c.onDelete('cascade'))
          .addForeignKeyConstraint('join_requests_user_fk', ['user_id'], 'users', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('join_requests_user_idx').on('join_requests').column('user_id').execute();

        // pieces: the piece hashes concatenated as one hex string (64 chars each); 16384 pieces are 1 MiB
        // of text in one row instead of 16384 rows.
        await db.schema
          .createTable('blobs')
          .addColumn('sha256', 'text', (c) => c.primaryKey())
          .addColumn('size', t.big, (c) => c.notNull())
          .addColumn('piece_size', t.big, (c) => c.notNull())
          .addColumn('piece_count', t.int, (c) => c.notNull())
          .addColumn('pieces', 'text', (c) => c.notNull())
          .addColumn('created_at', t.big, (c) => c.notNull())
          .execute();

        // A group's catalogue goes with the group; the bytes (blobs) stay until the collector takes them.
        await db.schema
          .createTable('files')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('group_id', 'text')
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('size', t.big, (c) => c.notNull())
          .addColumn('shared_by', 'text', (c) => c.notNull())
          .addColumn('shared_at', t.big, (c) => c.notNull())
          .addForeignKeyConstraint('files_group_fk', ['group_id'], 'groups', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('files_group_idx').on('files').columns(['group_id', 'shared_at']).execute();
        await db.schema.createIndex('files_sha256_idx').on('files').column('sha256').execute();

        // seq orders entries written in the same millisecond; ids stay random like everywhere else.
        await db.schema
          .createTable('audit')
          .$call((b) =>
            dialect === 'postgres'
              ? b.addColumn('seq', 'bigserial', (c) => c.primaryKey())
              : b.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement()),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('at', t.big, (c) => c.notNull())
          .addColumn('actor_id', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('group_name', 'text')
          .addColumn('target', 'text')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_group_idx').on('audit').columns(['group_name', 'seq']).execute();

        // Deliveries keep no foreign keys: they are history, and outlive (cancelled) their group or file.
        await db.schema
          .createTable('deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('file_id', 'text', (c) => c.notNull())
          .addColumn('group_id', 'text')
          .addColumn('target_user_id', 'text')
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', t.big, (c) => c.notNull())
          .addColumn('cancelled', t.bool, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('deliveries_group_idx').on('deliveries').column('group_id').execute();
        await db.schema.createIndex('deliveries_target_idx').on('deliveries').column('target_user_id').execute();

        await db.schema
          .createTable('recipients')
          .addColumn('delivery_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('bytes', t.big, (c) => c.notNull())
          .addColumn('rate', t.real, (c) => c.notNull())
          .addColumn('transport', 'text')
          .addColumn('error', 'text')
          .addColumn('attempts', t.int, (c) => c.notNull())
          .addColumn('next_attempt_at', t.big)
          .addColumn('updated_at', t.big, (c) => c.notNull())
          .addColumn('delivered_at', t.big)
          .addColumn('detail', 'text')
          .addPrimaryKeyConstraint('recipients_pk', ['delivery_id', 'user_id'])
          .addForeignKeyConstraint('recipients_delivery_fk', ['delivery_id'], 'deliveries', ['id'], (c) =>
            c.onDelete('cascade'),
          )
          .addForeignKeyConstraint('recipients_user_fk', ['user_id'], 'users', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('recipients_user_idx').on('recipients').columns(['user_id', 'state']).execute();

        await db.schema
          .createTable('agents')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('address', 'text', (c) => c.notNull())
          .addColumn('listen_url', 'text')
          .addColumn('connected_at', t.big, (c) => c.notNull())
          .addColumn('last_seen', t.big, (c) => c.notNull())
          .addColumn('online', t.bool, (c) => c.notNull())
          .addForeignKeyConstraint('agents_user_fk', ['user_id'], 'users', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('agents_user_idx').on('agents').column('user_id').execute();

        await db.schema
          .createTable('holders')
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('agent_id', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('holders_pk', ['sha256', 'agent_id'])
          .addForeignKeyConstraint('holders_agent_fk', ['agent_id'], 'agents', ['id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('holders_agent_idx').on('holders').column('agent_id').execute();
      },
      async down(db: AnyDb) {
        for (const table of [
          'holders', 'agents', 'recipients', 'deliveries', 'audit', 'files', 'blobs',
          'join_requests', 'memberships', 'groups', 'sessions', 'users',
        ]) {
          await sql`drop table if exists ${sql.table(table)}`.execute(db);
        }
      },
    },
    '0002_recipient_state_index': {
      // The scheduler scans recipients by state alone (every failed or stuck transfer).
      async up(db: AnyDb) {
        await db.schema.createIndex('recipients_state_idx').on('recipients').columns(['state', 'updated_at']).execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropIndex('recipients_state_idx').execute();
      },
    },
  };
}

/** A Kysely MigrationProvider over the in-code migrations above. */
export function createMigrationProvider(dialect: StoreDialect): MigrationProvider {
  const migrations = storeMigrations(dialect);
  return { getMigrations: async () => migrations };
}
