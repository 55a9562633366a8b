/**
 * Opens the Store named by a URL and brings its schema up to date: `sqlite:/path/file.db` (or a plain path,
 * or `sqlite::memory:`) for the embedded default, `postgres://…` / `postgresql://…` for PostgreSQL.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import {
  CompiledQuery, Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, sql, type DatabaseConnection,
  type DialectAdapter, type Driver, type SqliteDialectConfig,
} from 'kysely';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { KyselyStore, type Database } from './kysely-store.ts';
import type { StoreDialect } from './migrations.ts';
import type { Store } from './store.ts';

/** Options of createStore. */
export interface CreateStoreOptions {
  /** `sqlite:/path/file.db`, a plain file path, `sqlite::memory:`, or `postgres://user@host:port/db`. */
  url: string;
  logger?: Logger;
  /** How long SQLite waits for a lock held by another process before failing, in ms (default 5000). */
  sqliteBusyTimeoutMs?: number;
  /** Most PostgreSQL connections in the pool (default 10). */
  pgPoolSize?: number;
  /** How long to wait for a PostgreSQL connection, in ms (default 10000). */
  pgConnectTimeoutMs?: number;
}

/** Where a store URL points. */
export type StoreLocation = { dialect: 'sqlite'; file: string } | { dialect: 'postgres'; url: string };

/** Parses a store URL (see CreateStoreOptions.url). */
export function parseStoreUrl(url: string): StoreLocation {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url };
  if (/^file:\/\//i.test(url)) return { dialect: 'sqlite', file: fileURLToPath(url) };
  let file = url;
  if (/^sqlite:/i.test(url)) {
    file = url.slice('sqlite:'.length);
    // sqlite:///abs/path and sqlite://relative are both seen in the wild; keep one leading slash.
    if (file.startsWith('//')) file = file.replace(/^\/\/+/, '/');
  }
  if (file === '') throw new ShoalError(ErrorCode.VALIDATION_FAILED, `no database file in store URL ${JSON.stringify(url)}`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(file)) {
    throw new ShoalError(ErrorCode.VALIDATION_FAILED, `unsupported store URL ${JSON.stringify(url)}`);
  }
  return { dialect: 'sqlite', file };
}

// int8 (bigint, count(*)) comes back from pg as a string by default; our values are epoch ms and byte
// counts, well inside Number's exact range, so they are parsed as numbers. Per pool, not pg's global table.
const pgTypes = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * SQLite runs DDL inside transactions fine, but Kysely's adapter says it does not, so its Migrator would
 * apply a migration statement by statement: a crash half-way would leave a schema no later start can fix.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * Transactions take the write lock when they begin (BEGIN IMMEDIATE). A deferred transaction that reads and
 * then writes fails at once with SQLITE_BUSY when another process wrote in between, busy_timeout or not;
 * an immediate one waits for the lock instead. Within one process Kysely already runs one at a time.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class SqliteStoreDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/**
 * Puts the database in WAL mode (which persists in the file). SQLite answers SQLITE_BUSY at once, without
 * its busy handler, when another process is switching the same new file at that moment: several agents or
 * servers started together on one database. So the mode is only set where it is not WAL yet, and a busy
 * answer is retried until `timeoutMs`.
 */
function useWal(db: SqliteDatabase.Database, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let tries = 1; ; tries++) {
    try {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(50, 5 * tries));
    }
  }
}

function openSqlite(file: string, busyTimeoutMs: number): SqliteDatabase.Database {
  let db: SqliteDatabase.Database;
  try {
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    db = new SqliteDatabase(file);
  } catch (err) {
    throw new ShoalError(ErrorCode.INTERNAL, `cannot open the SQLite database ${file}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    useWal(db, busyTimeoutMs);
    // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // SQLite's own lower() folds ASCII only; this one folds like PostgreSQL's under a UTF-8 locale, so
    // case-insensitive search behaves the same on both databases.
    db.function('lower', { deterministic: true }, (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v));
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Opens (creating when needed) the store at `options.url` and runs its migrations. */
export async function createStore(options: CreateStoreOptions): Promise<Store> {
  const logger = (options.logger ?? silentLogger).child('store');
  const loc = parseStoreUrl(options.url);
  let db: Kysely<Database>;
  let dialect: StoreDialect;
  if (loc.dialect === 'sqlite') {
    dialect = 'sqlite';
    const sqlite = openSqlite(loc.file, options.sqliteBusyTimeoutMs ?? 5000);
    db = new Kysely<Database>({ dialect: new SqliteStoreDialect({ database: sqlite }) });
    logger.debug('opened sqlite store', { file: loc.file });
  } else {
    dialect = 'postgres';
    const pool = new pg.Pool({
      connectionString: loc.url,
      max: options.pgPoolSize ?? 10,
      types: pgTypes,
      // Without it a connect to a silent host waits for the OS (minutes); queries then fail instead of hanging.
      connectionTimeoutMillis: options.pgConnectTimeoutMs ?? 10_000,
    });
    // An idle client that loses its server must not crash the process; the next query reports the failure.
    pool.on('error', (err) => logger.warn('postgres idle client error', { err }));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    logger.debug('opened postgres store', { host: safeHost(loc.url) });
  }
  const store = new KyselyStore(db, { dialect, logger });
  try {
    if (dialect === 'postgres') await checkReachable(db, options.url);
    await store.migrate();
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return store;
}

/** Fails with UNREACHABLE (and the driver's reason) when the PostgreSQL server cannot be used at all. */
async function checkReachable(db: Kysely<Database>, url: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    throw new ShoalError(ErrorCode.UNREACHABLE, `cannot use the PostgreSQL database ${safeHost(url)}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
}

/** host:port/db of a PostgreSQL URL, without credentials (for logs). */
function safeHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return '?';
  }
}
