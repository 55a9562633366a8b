/**
 * PostgreSQL helpers for tests. The server comes from scripts/postgres.sh (the test script starts it and
 * sets SHOAL_TEST_PG_URL); each test file gets its own empty database so files can run in parallel.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The URL of the test PostgreSQL server, or undefined when none was started. */
export function pgUrl(): string | undefined {
  const url = process.env.SHOAL_TEST_PG_URL;
  return url && url.trim() !== '' ? url.trim() : undefined;
}

/** Why PostgreSQL tests are skipped when pgUrl() is undefined (for node:test's `skip` option). */
export const pgSkipReason =
  'PostgreSQL run skipped: SHOAL_TEST_PG_URL is not set (start one with `scripts/postgres.sh start` and export its URL)';

/** A database made for one test file. */
export interface TestDatabase {
  /** postgres://… URL of the new database. */
  url: string;
  /** Drops the database (closing whatever connections are left). */
  drop(): Promise<void>;
}

async function withAdminClient<T>(baseUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database `shoal_<random>` on the server of `baseUrl` (default pgUrl()) and returns its
 * URL; call drop() when done (e.g. in `after`).
 */
export async function createTestDatabase(baseUrl: string | undefined = pgUrl()): Promise<TestDatabase> {
  if (!baseUrl) throw new Error(pgSkipReason);
  const name = `shoal_${randomBytes(6).toString('hex')}`;
  // The name is ours (hex), never user input, so it can go into the statement as an identifier.
  await withAdminClient(baseUrl, (c) => c.query(`create database "${name}"`));
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  let dropped = false;
  return {
    url: u.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdminClient(baseUrl, async (c) => {
        await c.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
          [name],
        );
        await c.query(`drop database if exists "${name}"`);
      });
    },
  };
}
