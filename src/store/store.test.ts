/**
 * The Store's behaviour, run once per database: SQLite always (a file in a temp dir), PostgreSQL when
 * SHOAL_TEST_PG_URL points at a server (scripts/postgres.sh start), each in a database of its own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { ErrorCode, isShoalError, type ErrorCode as Code } from '../protocol/errors.ts';
import { createTestDatabase, pgSkipReason, pgUrl } from '../../test/support/postgres.ts';
import { createStore, parseStoreUrl } from './create-store.ts';
import { escapeLike } from './kysely-store.ts';
import type { FileRow, GroupRow, Store, UserRow } from './store.ts';

/** A place for a fresh, empty database; cleanup() removes it (after the store is closed). */
interface Fresh {
  url: string;
  cleanup(): Promise<void>;
}

interface DialectCase {
  name: string;
  skip: string | false;
  fresh(): Promise<Fresh>;
  /** Runs one statement on a connection of its own (outside the store); returns the rows. */
  raw(url: string, statement: string): Promise<unknown[]>;
  /** The statement that lists the names of the indexes. */
  indexNames: string;
}

const dialects: DialectCase[] = [
  {
    name: 'SQLite',
    skip: false,
    async fresh() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-store-'));
      return { url: `sqlite:${path.join(dir, 'shoal.db')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
    async raw(url, statement) {
      const db = new SqliteDatabase(url.replace(/^sqlite:/, ''));
      try {
        const stmt = db.prepare(statement);
        if (stmt.reader) return stmt.all();
        stmt.run();
        return [];
      } finally {
        db.close();
      }
    },
    indexNames: "select name from sqlite_master where type = 'index'",
  },
  {
    name: 'PostgreSQL',
    skip: pgUrl() ? false : pgSkipReason,
    async fresh() {
      const db = await createTestDatabase();
      return { url: db.url, cleanup: () => db.drop() };
    },
    async raw(url, statement) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(statement)).rows;
      } finally {
        await client.end();
      }
    },
    indexNames: 'select indexname as name from pg_indexes',
  },
];

/**
 * Runs `body` (an ES module body with `createStore` imported and `url` defined) in a child Node process.
 * Resolves with its stdout once it exits, or once it printed `until` — then it is killed with SIGKILL.
 * Bounded: a child that does neither within 30 s is killed and the call fails.
 */
async function runChild(url: string, body: string, until?: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-store-child-'));
  const script = path.join(dir, 'child.mts');
  const createStoreUrl = new URL('./create-store.ts', import.meta.url).href;
  await writeFile(script, `import { createStore } from ${JSON.stringify(createStoreUrl)};\nconst url = process.env.STORE_URL;\n${body}\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, STORE_URL: url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let out = '';
  let err = '';
  try {
    child.stderr.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child timed out; stdout: ${out} stderr: ${err}`)), 30_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (until !== undefined && out.includes(until)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (until === undefined && code === 0) resolve();
        else reject(new Error(`child exited with ${code}; stderr: ${err}`));
      });
    });
    return out;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

/** Awaits `p` and asserts it fails with a ShoalError of `code`. */
async function rejectsWith(p: Promise<unknown>, code: Code): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isShoalError(err), `expected a ShoalError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

for (const dialect of dialects) {
  describe(`Store on ${dialect.name}`, { skip: dialect.skip }, () => {
    let store: Store;
    let place: Fresh;
    let n = 0;
    /** A name no other test uses. */
    const unique = (prefix: string) => `${prefix}-${++n}`;

    const user = (isAdmin = false) =>
      store.createUser({ username: unique('user'), passwordHash: 'scrypt$hash', isAdmin });
    let port = 20000;
    const group = (createdBy: UserRow) =>
      store.createGroup({ name: unique('group'), multicastAddress: '239.192.0.1', multicastPort: port++, createdBy: createdBy.id });
    const file = (g: GroupRow | null, by: UserRow, f: Partial<Omit<FileRow, 'id'>> = {}) =>
      store.createFile({
        groupId: g ? g.id : null, name: unique('file') + '.bin', type: 'bin', sha256: sha(unique('bytes')), size: 100,
        sharedBy: by.id, sharedAt: Date.now(), ...f,
      });

    before(async () => {
      place = await dialect.fresh();
      store = await createStore({ url: place.url });
    });
    after(async () => {
      await store?.close();
      await place?.cleanup();
    });

    describe('users', () => {
      it('creates a user with a random id and reads it back by id and by name', async () => {
        const u = await store.createUser({ username: 'alice', passwordHash: 'scrypt$abc', isAdmin: true });
        assert.match(u.id, /^[0-9a-f-]{36}$/);
        assert.ok(u.createdAt > 0);
        assert.deepEqual(await store.getUserById(u.id), u);
        assert.deepEqual(await store.getUserByName('alice'), u);
        assert.equal((await store.getUserById(u.id))?.isAdmin, true);
        assert.equal(await store.getUserByName('nobody'), undefined);
        assert.equal(await store.getUserById('no-such-id'), undefined);
      });

      it('refuses a second user with the same name with USER_EXISTS and stores nothing', async () => {
        const before = await store.countUsers();
        await rejectsWith(store.createUser({ username: 'alice', passwordHash: 'x', isAdmin: false }), ErrorCode.USER_EXISTS);
        assert.equal(await store.countUsers(), before);
        assert.equal((await store.getUserByName('alice'))?.passwordHash, 'scrypt$abc');
      });

      it('lists users sorted by name and counts them', async () => {
        const before = await store.countUsers();
        const b = await store.createUser({ username: 'zed', passwordHash: 'h', isAdmin: false });
        const a = await store.createUser({ username: 'bob', passwordHash: 'h', isAdmin: false });
        assert.equal(await store.countUsers(), before + 2);
        const names = (await store.listUsers()).map((u) => u.username);
        assert.deepEqual(names, [...names].sort());
        assert.ok(names.includes(a.username) && names.includes(b.username));
      });

      it('makes a user admin and back, and answers USER_NOT_FOUND for an unknown user', async () => {
        const u = await user();
        await store.setAdmin(u.id, true);
        assert.equal((await store.getUserById(u.id))?.isAdmin, true);
        await store.setAdmin(u.id, false);
        assert.equal((await store.getUserById(u.id))?.isAdmin, false);
        await rejectsWith(store.setAdmin('no-such-id', true), ErrorCode.USER_NOT_FOUND);
      });

      it('deletes a user with their memberships, join requests, sessions, agents and deliveries to them', async () => {
        const admin = await user(true);
        const u = await user();
        const g = await group(admin);
        const g2 = await group(admin);
        await store.addMember({ groupId: g.id, userId: u.id, role: 'member', joinedAt: 1 });
        await store.upsertJoinRequest({ groupId: g2.id, userId: u.id, state: 'pending', createdAt: 1, decidedBy: null, decidedAt: null });
        const token = sha(unique('token'));
        await store.createSession({ tokenHash: token, userId: u.id, createdAt: 1, expiresAt: Date.now() + 60_000 });
        const agentId = unique('agent');
        await store.upsertAgent({
          id: agentId, userId: u.id, name: 'pc', version: '1', address: '127.0.0.1', listenUrl: null, connectedAt: 1,
          lastSeen: 1, online: true,
        });
        const blobSha = sha(unique('held'));
        await store.setHolder(blobSha, agentId, true);
        const f = await file(g, admin);
        const d = await store.createDelivery({ fileId: f.id, groupId: g.id, targetUserId: null, createdBy: admin.id, createdAt: 1 });
        await store.upsertRecipient({
          deliveryId: d.id, userId: u.id, state: 'pending', bytes: 0, rate: 0, transport: null, error: null, attempts: 0,
          nextAttemptAt: null, updatedAt: 1, deliveredAt: null, detail: null,
        });
        assert.ok(await store.getSession(token));

        await store.deleteUser(u.id);

        assert.equal(await store.getUserById(u.id), undefined);
        assert.equal(await store.getMembership(g.id, u.id), undefined);
        assert.equal(await store.countMembers(g.id), 0);
        assert.equal(await store.getJoinRequest(g2.id, u.id), undefined);
        assert.equal(await store.getSession(token), undefined);
        assert.equal(await store.getAgent(agentId), undefined);
        assert.deepEqual(await store.listHolders(blobSha), []);
        assert.equal(await store.getRecipient(d.id, u.id), undefined);
        // What others made stays.
        assert.ok(await store.getGroupById(g.id));
        assert.ok(await store.getFile(f.id));
        assert.ok(await store.getDelivery(d.id));
        await rejectsWith(store.deleteUser(u.id), ErrorCode.USER_NOT_FOUND);
      });
    });

    describe('sessions', () => {
      it('stores a session, finds it by token hash, and deletes it', async () => {
        const u = await user();
        const s = { tokenHash: sha(unique('token')), userId: u.id, createdAt: 1000, expiresAt: 2_000_000_000_000 };
        await store.createSession(s);
        assert.deepEqual(await store.getSession(s.tokenHash), s);
        await store.deleteSession(s.tokenHash);
        assert.equal(await store.getSession(s.tokenHash), undefined);
        // Deleting again is harmless (a second logout).
        await store.deleteSession(s.tokenHash);
      });

      it('refuses a session of an unknown user with USER_NOT_FOUND', async () => {
        await rejectsWith(
          store.createSession({ tokenHash: sha(unique('token')), userId: 'no-such-id', createdAt: 1, expiresAt: 2 }),
          ErrorCode.USER_NOT_FOUND,
        );
      });

      it('deletes expired sessions only, and says how many', async () => {
        const u = await user();
        const now = 5_000_000_000_000;
        await store.deleteExpiredSessions(now); // whatever earlier tests left
        const old1 = sha(unique('t')), old2 = sha(unique('t')), live = sha(unique('t'));
        await store.createSession({ tokenHash: old1, userId: u.id, createdAt: 1, expiresAt: now - 1 });
        await store.createSession({ tokenHash: old2, userId: u.id, createdAt: 1, expiresAt: now });
        await store.createSession({ tokenHash: live, userId: u.id, createdAt: 1, expiresAt: now + 1 });
        assert.equal(await store.deleteExpiredSessions(now), 2);
        assert.equal(await store.getSession(old1), undefined);
        assert.equal(await store.getSession(old2), undefined);
        assert.ok(await store.getSession(live));
        assert.equal(await store.deleteExpiredSessions(now), 0);
      });
    });

    describe('groups', () => {
      it('creates a group and reads it back by id, by name and in the list', async () => {
        const admin = await user(true);
        const g = await store.createGroup({ name: 'lab', multicastAddress: '239.1.2.3', multicastPort: 5000, createdBy: admin.id });
        assert.deepEqual(await store.getGroupById(g.id), g);
        assert.deepEqual(await store.getGroupByName('lab'), g);
        assert.equal(await store.getGroupByName('LAB-none'), undefined);
        const list = await store.listGroups();
        assert.deepEqual(list.find((x) => x.id === g.id), g);
        assert.deepEqual(list.map((x) => x.name), [...list.map((x) => x.name)].sort());
        assert.ok((await store.usedMulticast()).some((m) => m.address === '239.1.2.3' && m.port === 5000));
      });

      it('refuses a duplicate name with GROUP_EXISTS', async () => {
        const admin = await user(true);
        await rejectsWith(
          store.createGroup({ name: 'lab', multicastAddress: '239.9.9.9', multicastPort: 6000, createdBy: admin.id }),
          ErrorCode.GROUP_EXISTS,
        );
      });

      it('refuses an address:port pair already in use with MULTICAST_ADDRESS_TAKEN, but allows another port', async () => {
        const admin = await user(true);
        await rejectsWith(
          store.createGroup({ name: unique('g'), multicastAddress: '239.1.2.3', multicastPort: 5000, createdBy: admin.id }),
          ErrorCode.MULTICAST_ADDRESS_TAKEN,
        );
        const g = await store.createGroup({ name: unique('g'), multicastAddress: '239.1.2.3', multicastPort: 5001, createdBy: admin.id });
        assert.equal(g.multicastPort, 5001);
      });

      it('deletes a group with its memberships, requests and catalogue; deliveries stay, cancelled', async () => {
        const admin = await user(true);
        const u = await user();
        const v = await user();
        const g = await group(admin);
        await store.addMember({ groupId: g.id, userId: u.id, role: 'owner', joinedAt: 1 });
        await store.upsertJoinRequest({ groupId: g.id, userId: v.id, state: 'pending', createdAt: 1, decidedBy: null, decidedAt: null });
        const f = await file(g, u);
        const d = await store.createDelivery({ fileId: f.id, groupId: g.id, targetUserId: null, createdBy: u.id, createdAt: 1 });

        await store.cancelDeliveriesOfGroup(g.id);
        await store.deleteGroup(g.id);

        assert.equal(await store.getGroupById(g.id), undefined);
        assert.equal(await store.getMembership(g.id, u.id), undefined);
        assert.deepEqual(await store.listGroupsOfUser(u.id), []);
        assert.equal(await store.getJoinRequest(g.id, v.id), undefined);
        assert.equal(await store.getFile(f.id), undefined);
        assert.equal((await store.getDelivery(d.id))?.cancelled, true);
        assert.ok(!(await store.usedMulticast()).some((m) => m.address === g.multicastAddress && m.port === g.multicastPort));
        assert.ok(await store.getUserById(u.id), 'members themselves stay');
        await rejectsWith(store.deleteGroup(g.id), ErrorCode.GROUP_NOT_FOUND);
      });
    });

    describe('memberships', () => {
      it('adds members, lists them with usernames sorted, counts them, and lists a user’s groups', async () => {
        const admin = await user(true);
        const u = await user();
        const g1 = await group(admin);
        const g2 = await group(admin);
        await store.addMember({ groupId: g1.id, userId: u.id, role: 'member', joinedAt: 10 });
        await store.addMember({ groupId: g1.id, userId: admin.id, role: 'owner', joinedAt: 5 });
        await store.addMember({ groupId: g2.id, userId: u.id, role: 'owner', joinedAt: 7 });

        assert.deepEqual(await store.getMembership(g1.id, u.id), { groupId: g1.id, userId: u.id, role: 'member', joinedAt: 10 });
        const members = await store.listMembers(g1.id);
        assert.deepEqual(
          members,
          [
            { groupId: g1.id, userId: admin.id, role: 'owner', joinedAt: 5, username: admin.username },
            { groupId: g1.id, userId: u.id, role: 'member', joinedAt: 10, username: u.username },
          ].sort((a, b) => (a.username < b.username ? -1 : 1)),
        );
        assert.equal(await store.countMembers(g1.id), 2);
        assert.deepEqual((await store.listGroupsOfUser(u.id)).map((g) => g.id), [g1, g2].sort((a, b) => (a.name < b.name ? -1 : 1)).map((g) => g.id));
        assert.deepEqual(await store.listGroupsOfUser((await user()).id), []);
      });

      it('refuses a second membership with ALREADY_MEMBER', async () => {
        const admin = await user(true);
        const g = await group(admin);
        await store.addMember({ groupId: g.id, userId: admin.id, role: 'owner', joinedAt: 1 });
        await rejectsWith(store.addMember({ groupId: g.id, userId: admin.id, role: 'member', joinedAt: 2 }), ErrorCode.ALREADY_MEMBER);
        assert.equal((await store.getMembership(g.id, admin.id))?.role, 'owner');
      });

      it('refuses a membership in an unknown group or of an unknown user', async () => {
        const admin = await user(true);
        const g = await group(admin);
        await rejectsWith(store.addMember({ groupId: 'no-such-group', userId: admin.id, role: 'member', joinedAt: 1 }), ErrorCode.GROUP_NOT_FOUND);
        await rejectsWith(store.addMember({ groupId: g.id, userId: 'no-such-user', role: 'member', joinedAt: 1 }), ErrorCode.USER_NOT_FOUND);
        assert.equal(await store.countMembers(g.id), 0);
      });

      it('removes a member, and answers NOT_A_MEMBER for someone who is not one', async () => {
        const admin = await user(true);
        const g = await group(admin);
        await store.addMember({ groupId: g.id, userId: admin.id, role: 'owner', joinedAt: 1 });
        await store.removeMember(g.id, admin.id);
        assert.equal(await store.getMembership(g.id, admin.id), undefined);
        await rejectsWith(store.removeMember(g.id, admin.id), ErrorCode.NOT_A_MEMBER);
      });
    });

    describe('join requests', () => {
      it('stores a pending request and replaces it on upsert with the decision', async () => {
        const admin = await user(true);
        const u = await user();
        const g = await group(admin);
        const pending = { groupId: g.id, userId: u.id, state: 'pending' as const, createdAt: 100, decidedBy: null, decidedAt: null };
        await store.upsertJoinRequest(pending);
        assert.deepEqual(await store.getJoinRequest(g.id, u.id), pending);
        const approved = { ...pending, state: 'approved' as const, decidedBy: admin.id, decidedAt: 200 };
        await store.upsertJoinRequest(approved);
        assert.deepEqual(await store.getJoinRequest(g.id, u.id), approved);
        assert.equal((await store.listJoinRequests({ groupIds: [g.id] })).length, 1);
        // Asking again after a denial starts over.
        const again = { ...pending, createdAt: 300 };
        await store.upsertJoinRequest(again);
        assert.deepEqual(await store.getJoinRequest(g.id, u.id), again);
      });

      it('refuses a request for an unknown group or user', async () => {
        const u = await user();
        const g = await group(u);
        const r = { state: 'pending' as const, createdAt: 1, decidedBy: null, decidedAt: null };
        await rejectsWith(store.upsertJoinRequest({ ...r, groupId: 'no-such-group', userId: u.id }), ErrorCode.GROUP_NOT_FOUND);
        await rejectsWith(store.upsertJoinRequest({ ...r, groupId: g.id, userId: 'no-such-user' }), ErrorCode.USER_NOT_FOUND);
      });

      it('filters requests by groups, by user and by state, oldest first', async () => {
        const admin = await user(true);
        const [u, v] = [await user(), await user()];
        const [g1, g2, g3] = [await group(admin), await group(admin), await group(admin)];
        const req = (groupId: string, userId: string, state: 'pending' | 'approved' | 'denied', createdAt: number) =>
          store.upsertJoinRequest({ groupId, userId, state, createdAt, decidedBy: state === 'pending' ? null : admin.id, decidedAt: state === 'pending' ? null : createdAt + 1 });
        await req(g1.id, u.id, 'pending', 30);
        await req(g2.id, u.id, 'denied', 20);
        await req(g1.id, v.id, 'pending', 10);
        await req(g3.id, v.id, 'approved', 40);

        const key = (rows: Array<{ groupId: string; userId: string }>) => rows.map((r) => `${r.groupId}/${r.userId}`);
        assert.deepEqual(key(await store.listJoinRequests({ groupIds: [g1.id, g2.id] })), [`${g1.id}/${v.id}`, `${g2.id}/${u.id}`, `${g1.id}/${u.id}`]);
        assert.deepEqual(key(await store.listJoinRequests({ groupIds: [g1.id, g2.id, g3.id], state: 'pending' })), [`${g1.id}/${v.id}`, `${g1.id}/${u.id}`]);
        assert.deepEqual(key(await store.listJoinRequests({ userId: v.id })), [`${g1.id}/${v.id}`, `${g3.id}/${v.id}`]);
        assert.deepEqual(key(await store.listJoinRequests({ userId: u.id, state: 'denied' })), [`${g2.id}/${u.id}`]);
        assert.deepEqual(await store.listJoinRequests({ groupIds: [] }), []);
      });
    });

    describe('blobs', () => {
      it('keeps 16384 piece hashes of a 64 GiB file in order', async () => {
        const pieces = Array.from({ length: 16384 }, (_, i) => sha(`piece ${i}`));
        const b = { sha256: sha(unique('big')), size: 64 * 1024 ** 3, pieceSize: 4 * 1024 ** 2, pieces, createdAt: 42 };
        await store.putBlob(b);
        assert.deepEqual(await store.getBlob(b.sha256), b);
        assert.deepEqual(await store.getBlobInfo(b.sha256), { sha256: b.sha256, size: b.size, pieceSize: b.pieceSize, pieceCount: 16384, createdAt: 42 });
        assert.equal(await store.getBlob(sha('absent')), undefined);
        assert.equal(await store.getBlobInfo(sha('absent')), undefined);
      });

      it('keeps an empty file with no pieces', async () => {
        const b = { sha256: sha(''), size: 0, pieceSize: 4 * 1024 ** 2, pieces: [], createdAt: 1 };
        await store.putBlob(b);
        assert.deepEqual(await store.getBlob(b.sha256), b);
      });

      it('refuses piece hashes that are not 64 lower-case hex characters', async () => {
        const s = sha(unique('bad'));
        await rejectsWith(store.putBlob({ sha256: s, size: 1, pieceSize: 1, pieces: ['abc'], createdAt: 1 }), ErrorCode.VALIDATION_FAILED);
        await rejectsWith(store.putBlob({ sha256: s, size: 1, pieceSize: 1, pieces: [sha('x').toUpperCase()], createdAt: 1 }), ErrorCode.VALIDATION_FAILED);
        assert.equal(await store.getBlob(s), undefined);
      });

      it('keeps the first row when the same bytes are put twice', async () => {
        const b = { sha256: sha(unique('twice')), size: 3, pieceSize: 4, pieces: [sha('p')], createdAt: 1 };
        await store.putBlob(b);
        await store.putBlob({ ...b, createdAt: 2 });
        assert.equal((await store.getBlob(b.sha256))?.createdAt, 1);
      });

      it('lists blobs no file refers to, and deletes only those', async () => {
        const u = await user();
        const g = await group(u);
        const used = { sha256: sha(unique('used')), size: 1, pieceSize: 1, pieces: [sha('a')], createdAt: 1 };
        const orphan = { sha256: sha(unique('orphan')), size: 1, pieceSize: 1, pieces: [sha('b')], createdAt: 1 };
        await store.putBlob(used);
        await store.putBlob(orphan);
        const f = await file(g, u, { sha256: used.sha256 });

        const orphans = await store.listOrphanBlobs();
        assert.ok(orphans.includes(orphan.sha256));
        assert.ok(!orphans.includes(used.sha256));

        assert.equal(await store.deleteBlob(used.sha256), false, 'still referenced: kept');
        assert.ok(await store.getBlob(used.sha256));
        assert.equal(await store.deleteBlob(orphan.sha256), true);
        assert.equal(await store.getBlob(orphan.sha256), undefined);
        assert.equal(await store.deleteBlob(orphan.sha256), false);

        await store.deleteFile(f.id);
        assert.ok((await store.listOrphanBlobs()).includes(used.sha256));
      });
    });

    describe('files', () => {
      it('creates a file and reads it back; unknown files are FILE_NOT_FOUND on delete', async () => {
        const u = await user();
        const g = await group(u);
        const f = await file(g, u, { name: 'report.pdf', type: 'pdf', size: 12345 });
        assert.deepEqual(await store.getFile(f.id), f);
        await store.deleteFile(f.id);
        assert.equal(await store.getFile(f.id), undefined);
        await rejectsWith(store.deleteFile(f.id), ErrorCode.FILE_NOT_FOUND);
      });

      it('keeps a direct (1:1) file outside any group', async () => {
        const u = await user();
        const f = await file(null, u);
        assert.equal((await store.getFile(f.id))?.groupId, null);
      });

      it('refuses a file in an unknown group with GROUP_NOT_FOUND', async () => {
        const u = await user();
        await rejectsWith(file({ id: 'no-such-group' } as GroupRow, u), ErrorCode.GROUP_NOT_FOUND);
      });

      describe('search, filters and sort', () => {
        let g: GroupRow;
        let alice: UserRow;
        let bob: UserRow;
        const names = (rows: FileRow[]) => rows.map((f) => f.name);

        before(async () => {
          alice = await user();
          bob = await user();
          g = await group(alice);
          const other = await group(alice);
          const add = (name: string, type: string, size: number, sharedAt: number, by: UserRow, in_ = g) =>
            file(in_, by, { name, type, size, sharedAt });
          await add('Quarterly Report.PDF', 'pdf', 5000, 1000, alice);
          await add('report_final.docx', 'docx', 200, 3000, bob);
          await add('100%_done.txt', 'txt', 10, 2000, alice);
          await add('reportXfinal.docx', 'docx', 300, 4000, bob);
          await add('back\\slash.txt', 'txt', 7000, 5000, bob);
          await add('Ünïcode Résumé.pdf', 'pdf', 40, 6000, alice);
          await add('report in another group.pdf', 'pdf', 1, 9000, alice, other);
        });

        it('lists only the group’s files, newest first by default', async () => {
          assert.deepEqual(names(await store.listFiles(g.id, {})), [
            'Ünïcode Résumé.pdf', 'back\\slash.txt', 'reportXfinal.docx', 'report_final.docx', '100%_done.txt',
            'Quarterly Report.PDF',
          ]);
          assert.deepEqual(await store.listFiles('no-such-group', {}), []);
        });

        it('searches names case-insensitively as a substring', async () => {
          assert.deepEqual(names(await store.listFiles(g.id, { search: 'REPORT', sort: 'name' })), [
            'Quarterly Report.PDF', 'report_final.docx', 'reportXfinal.docx',
          ]);
          assert.deepEqual(names(await store.listFiles(g.id, { search: 'résumé' })), ['Ünïcode Résumé.pdf']);
          assert.deepEqual(names(await store.listFiles(g.id, { search: 'üNÏ' })), ['Ünïcode Résumé.pdf']);
        });

        it('matches LIKE wildcards in the search text literally', async () => {
          assert.deepEqual(names(await store.listFiles(g.id, { search: 'report_' })), ['report_final.docx']);
          assert.deepEqual(names(await store.listFiles(g.id, { search: '%' })), ['100%_done.txt']);
          assert.deepEqual(names(await store.listFiles(g.id, { search: '0%_' })), ['100%_done.txt']);
          assert.deepEqual(names(await store.listFiles(g.id, { search: '\\' })), ['back\\slash.txt']);
          assert.deepEqual(names(await store.listFiles(g.id, { search: "'; drop table files; --" })), []);
          assert.equal(escapeLike('a%b_c\\d'), 'a\\%b\\_c\\\\d');
        });

        it('filters by type exactly, in lower case', async () => {
          assert.deepEqual(names(await store.listFiles(g.id, { type: 'PDF', sort: 'name' })), ['Quarterly Report.PDF', 'Ünïcode Résumé.pdf']);
          assert.deepEqual(names(await store.listFiles(g.id, { type: 'doc' })), []);
        });

        it('filters by sharer, date and size bounds (inclusive)', async () => {
          assert.deepEqual(names(await store.listFiles(g.id, { sharerId: bob.id, sort: 'name' })), [
            'back\\slash.txt', 'report_final.docx', 'reportXfinal.docx',
          ]);
          assert.deepEqual(names(await store.listFiles(g.id, { since: 4000 })), ['Ünïcode Résumé.pdf', 'back\\slash.txt', 'reportXfinal.docx']);
          assert.deepEqual(names(await store.listFiles(g.id, { minSize: 200, maxSize: 5000, sort: 'size' })), [
            'report_final.docx', 'reportXfinal.docx', 'Quarterly Report.PDF',
          ]);
          assert.deepEqual(
            names(await store.listFiles(g.id, { search: 'report', type: 'docx', sharerId: bob.id, since: 3500, maxSize: 1000 })),
            ['reportXfinal.docx'],
          );
        });

        it('sorts by name (case-insensitive), by size (smallest first) and by date (newest first)', async () => {
          assert.deepEqual(names(await store.listFiles(g.id, { sort: 'name' })), [
            '100%_done.txt', 'back\\slash.txt', 'Quarterly Report.PDF', 'report_final.docx', 'reportXfinal.docx',
            'Ünïcode Résumé.pdf',
          ]);
          assert.deepEqual((await store.listFiles(g.id, { sort: 'size' })).map((f) => f.size), [10, 40, 200, 300, 5000, 7000]);
          assert.deepEqual((await store.listFiles(g.id, { sort: 'date' })).map((f) => f.sharedAt), [6000, 5000, 4000, 3000, 2000, 1000]);
        });
      });
    });

    describe('audit', () => {
      it('lists entries newest first, by group, up to a limit', async () => {
        const groupName = unique('audited');
        const at = 7_000_000_000_000;
        for (let i = 0; i < 5; i++) {
          await store.addAudit({ at: at + (i < 3 ? 0 : i), actorId: null, action: `act${i}`, groupName, target: `t${i}`, detail: null });
        }
        await store.addAudit({ at: at + 100, actorId: 'someone', action: 'other', groupName: unique('elsewhere'), target: null, detail: '{"x":1}' });

        const rows = await store.listAudit({ groupName });
        // Same millisecond: the later write comes first.
        assert.deepEqual(rows.map((r) => r.action), ['act4', 'act3', 'act2', 'act1', 'act0']);
        assert.ok(rows.every((r) => r.groupName === groupName && typeof r.id === 'string'));
        assert.deepEqual((await store.listAudit({ groupName, limit: 2 })).map((r) => r.action), ['act4', 'act3']);
        const all = await store.listAudit({ limit: 1 });
        assert.deepEqual(all.map((r) => [r.action, r.actorId, r.detail]), [['other', 'someone', '{"x":1}']]);
      });
    });

    describe('deliveries and recipients', () => {
      it('creates deliveries, lists them by group or target, and hides cancelled ones unless asked', async () => {
        const admin = await user(true);
        const u = await user();
        const g = await group(admin);
        const f = await file(g, admin);
        const d1 = await store.createDelivery({ fileId: f.id, groupId: g.id, targetUserId: null, createdBy: admin.id, createdAt: 1 });
        const d2 = await store.createDelivery({ fileId: f.id, groupId: g.id, targetUserId: null, createdBy: admin.id, createdAt: 2 });
        const direct = await store.createDelivery({ fileId: f.id, groupId: null, targetUserId: u.id, createdBy: admin.id, createdAt: 3 });
        assert.equal(d1.cancelled, false);
        assert.deepEqual(await store.getDelivery(d1.id), d1);
        assert.equal(await store.getDelivery('no-such-delivery'), undefined);

        assert.deepEqual((await store.listDeliveries({ groupId: g.id })).map((d) => d.id), [d1.id, d2.id]);
        assert.deepEqual((await store.listDeliveries({ targetUserId: u.id })).map((d) => d.id), [direct.id]);

        await store.cancelDelivery(d1.id);
        assert.equal((await store.getDelivery(d1.id))?.cancelled, true);
        assert.deepEqual((await store.listDeliveries({ groupId: g.id })).map((d) => d.id), [d2.id]);
        assert.deepEqual((await store.listDeliveries({ groupId: g.id, includeCancelled: true })).map((d) => d.id), [d1.id, d2.id]);
        await rejectsWith(store.cancelDelivery('no-such-delivery'), ErrorCode.DELIVERY_NOT_FOUND);

        await store.cancelDeliveriesOfGroup(g.id);
        assert.deepEqual(await store.listDeliveries({ groupId: g.id }), []);
        assert.equal((await store.getDelivery(direct.id))?.cancelled, false);
      });

      it('stores a recipient’s state and replaces it on upsert, with large byte counts exact', async () => {
        const admin = await user(true);
        const u = await user();
        const f = await file(null, admin);
        const d = await store.createDelivery({ fileId: f.id, groupId: null, targetUserId: u.id, createdBy: admin.id, createdAt: 1 });
        const pending = {
          deliveryId: d.id, userId: u.id, state: 'pending' as const, bytes: 0, rate: 0, transport: null, error: null,
          attempts: 0, nextAttemptAt: null, updatedAt: 1, deliveredAt: null, detail: null,
        };
        await store.upsertRecipient(pending);
        assert.deepEqual(await store.getRecipient(d.id, u.id), pending);
        const done = {
          ...pending, state: 'delivered' as const, bytes: 64 * 1024 ** 3 + 1, rate: 123456.75, transport: 'multicast',
          attempts: 2, nextAttemptAt: 99, updatedAt: 5_000_000_000_000, deliveredAt: 5_000_000_000_000, detail: '{"passes":2}',
        };
        await store.upsertRecipient(done);
        assert.deepEqual(await store.getRecipient(d.id, u.id), done);
        assert.equal(await store.getRecipient(d.id, admin.id), undefined);
      });

      it('refuses a recipient of an unknown delivery or user', async () => {
        const u = await user();
        const f = await file(null, u);
        const d = await store.createDelivery({ fileId: f.id, groupId: null, targetUserId: u.id, createdBy: u.id, createdAt: 1 });
        const r = {
          state: 'pending' as const, bytes: 0, rate: 0, transport: null, error: null, attempts: 0, nextAttemptAt: null,
          updatedAt: 1, deliveredAt: null, detail: null,
        };
        await rejectsWith(store.upsertRecipient({ ...r, deliveryId: 'no-such-delivery', userId: u.id }), ErrorCode.DELIVERY_NOT_FOUND);
        await rejectsWith(store.upsertRecipient({ ...r, deliveryId: d.id, userId: 'no-such-user' }), ErrorCode.USER_NOT_FOUND);
      });

      it('lists recipients by delivery, by user and by states', async () => {
        const admin = await user(true);
        const [u, v] = [await user(), await user()];
        const f = await file(null, admin);
        const d1 = await store.createDelivery({ fileId: f.id, groupId: null, targetUserId: null, createdBy: admin.id, createdAt: 1 });
        const d2 = await store.createDelivery({ fileId: f.id, groupId: null, targetUserId: null, createdBy: admin.id, createdAt: 2 });
        const rec = (deliveryId: string, userId: string, state: 'pending' | 'receiving' | 'delivered' | 'failed') =>
          store.upsertRecipient({
            deliveryId, userId, state, bytes: 0, rate: 0, transport: null, error: state === 'failed' ? 'disk full' : null,
            attempts: 0, nextAttemptAt: null, updatedAt: 1, deliveredAt: null, detail: null,
          });
        await rec(d1.id, u.id, 'delivered');
        await rec(d1.id, v.id, 'failed');
        await rec(d2.id, u.id, 'pending');
        await rec(d2.id, v.id, 'receiving');

        const key = (rows: Array<{ deliveryId: string; userId: string; state: string }>) =>
          rows.map((r) => `${r.deliveryId === d1.id ? 'd1' : 'd2'}/${r.userId === u.id ? 'u' : 'v'}/${r.state}`).sort();
        assert.deepEqual(key(await store.listRecipients({ deliveryId: d1.id })), ['d1/u/delivered', 'd1/v/failed']);
        assert.deepEqual(key(await store.listRecipients({ userId: u.id })), ['d1/u/delivered', 'd2/u/pending']);
        assert.deepEqual(key(await store.listRecipients({ userId: v.id, states: ['pending', 'receiving', 'failed'] })), ['d1/v/failed', 'd2/v/receiving']);
        assert.deepEqual(key(await store.listRecipients({ deliveryId: d2.id, states: ['pending'] })), ['d2/u/pending']);
        assert.deepEqual(await store.listRecipients({ deliveryId: d1.id, states: [] }), []);
      });
    });

    describe('agents and holders', () => {
      it('upserts agents, reads them back and filters by presence and user', async () => {
        const u = await user();
        const v = await user();
        const a1 = {
          id: unique('agent'), userId: u.id, name: 'alpha', version: '0.1.0', address: '127.0.0.1', listenUrl: 'https://127.0.0.1:7443',
          connectedAt: 10, lastSeen: 20, online: true,
        };
        const a2 = { ...a1, id: unique('agent'), userId: v.id, name: 'beta', listenUrl: null, online: false };
        await store.upsertAgent(a1);
        await store.upsertAgent(a2);
        assert.deepEqual(await store.getAgent(a1.id), a1);
        assert.deepEqual(await store.getAgent(a2.id), a2);
        assert.equal(await store.getAgent('no-such-agent'), undefined);

        assert.deepEqual(await store.listAgents({ userId: u.id }), [a1]);
        const online = await store.listAgents({ online: true });
        assert.ok(online.some((a) => a.id === a1.id) && !online.some((a) => a.id === a2.id));
        assert.deepEqual(await store.listAgents({ online: false, userId: v.id }), [a2]);

        const moved = { ...a1, online: false, lastSeen: 30, address: '127.0.0.2', version: '0.2.0' };
        await store.upsertAgent(moved);
        assert.deepEqual(await store.getAgent(a1.id), moved);
        assert.deepEqual(await store.listAgents({ userId: u.id, online: true }), []);
      });

      it('refuses an agent of an unknown user with USER_NOT_FOUND', async () => {
        await rejectsWith(
          store.upsertAgent({
            id: unique('agent'), userId: 'no-such-user', name: 'x', version: '1', address: '127.0.0.1', listenUrl: null,
            connectedAt: 1, lastSeen: 1, online: true,
          }),
          ErrorCode.USER_NOT_FOUND,
        );
      });

      it('records which agents hold a file, idempotently, and forgets them', async () => {
        const u = await user();
        const mk = async (name: string) => {
          const id = unique('agent');
          await store.upsertAgent({ id, userId: u.id, name, version: '1', address: '127.0.0.1', listenUrl: null, connectedAt: 1, lastSeen: 1, online: true });
          return id;
        };
        const [x, y] = [await mk('x'), await mk('y')];
        const s = sha(unique('held'));
        await store.setHolder(s, x, true);
        await store.setHolder(s, x, true);
        await store.setHolder(s, y, true);
        assert.deepEqual(await store.listHolders(s), [x, y].sort());
        await store.setHolder(s, x, false);
        await store.setHolder(s, x, false);
        assert.deepEqual(await store.listHolders(s), [y]);
        assert.deepEqual(await store.listHolders(sha('nobody holds this')), []);
        await rejectsWith(store.setHolder(s, 'no-such-agent', true), ErrorCode.AGENT_NOT_FOUND);
      });
    });

    describe('transactions', () => {
      it('commits every write of the function together', async () => {
        const name = unique('tx-user');
        const result = await store.transaction(async (tx) => {
          const u = await tx.createUser({ username: name, passwordHash: 'h', isAdmin: false });
          const g = await tx.createGroup({ name: unique('tx-group'), multicastAddress: '239.2.0.1', multicastPort: port++, createdBy: u.id });
          await tx.addMember({ groupId: g.id, userId: u.id, role: 'owner', joinedAt: 1 });
          return { u, g };
        });
        assert.deepEqual(await store.getUserByName(name), result.u);
        assert.equal((await store.getMembership(result.g.id, result.u.id))?.role, 'owner');
      });

      it('rolls everything back when the function throws, and rethrows the error', async () => {
        const name = unique('tx-user');
        const groupName = unique('tx-group');
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            const u = await tx.createUser({ username: name, passwordHash: 'h', isAdmin: false });
            await tx.createGroup({ name: groupName, multicastAddress: '239.2.0.1', multicastPort: port++, createdBy: u.id });
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.getUserByName(name), undefined);
        assert.equal(await store.getGroupByName(groupName), undefined);
      });

      it('rolls back earlier writes when a later one hits a uniqueness error', async () => {
        const existing = await user();
        const name = unique('tx-user');
        await rejectsWith(
          store.transaction(async (tx) => {
            await tx.createUser({ username: name, passwordHash: 'h', isAdmin: false });
            await tx.createUser({ username: existing.username, passwordHash: 'h', isAdmin: false });
          }),
          ErrorCode.USER_EXISTS,
        );
        assert.equal(await store.getUserByName(name), undefined);
      });

      it('joins the outer transaction when nested, so an outer failure undoes the inner writes', async () => {
        const name = unique('tx-user');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.transaction(async (inner) => {
              await inner.createUser({ username: name, passwordHash: 'h', isAdmin: false });
            });
            assert.ok(await tx.getUserByName(name), 'visible inside the transaction');
            throw new Error('outer fails');
          }),
          /outer fails/,
        );
        assert.equal(await store.getUserByName(name), undefined);
      });
    });

    describe('lifetime', () => {
      it('keeps committed rows and drops the open transaction when the process is killed (SIGKILL)', async () => {
        const own = await dialect.fresh();
        try {
          // The child commits one user, then dies (SIGKILL) inside a transaction that inserted another.
          await runChild(
            own.url,
            `const store = await createStore({ url });
await store.createUser({ username: 'committed', passwordHash: 'h', isAdmin: false });
await store.transaction(async (tx) => {
  await tx.createUser({ username: 'uncommitted', passwordHash: 'h', isAdmin: false });
  console.log('inside');
  await new Promise(() => setInterval(() => {}, 1000));
});`,
            'inside',
          );
          const after = await createStore({ url: own.url });
          try {
            assert.ok(await after.getUserByName('committed'), 'the committed row survived');
            assert.equal(await after.getUserByName('uncommitted'), undefined, 'the open transaction left nothing');
            assert.equal(await after.countUsers(), 1);
            // Still writable: no lock or half-state left behind.
            await after.createUser({ username: 'after-kill', passwordHash: 'h', isAdmin: false });
            assert.equal(await after.countUsers(), 2);
          } finally {
            await after.close();
          }
        } finally {
          await own.cleanup();
        }
      });

      it('lets several processes open (and migrate) the same database at once', async () => {
        const own = await dialect.fresh();
        try {
          const outs = await Promise.all(
            [1, 2].map((i) =>
              runChild(
                own.url,
                `const store = await createStore({ url });
await store.createUser({ username: 'proc-${i}', passwordHash: 'h', isAdmin: false });
console.log('users', await store.countUsers());
await store.close();`,
              ),
            ),
          );
          assert.equal(outs.length, 2);
          const s = await createStore({ url: own.url });
          try {
            assert.deepEqual((await s.listUsers()).map((u) => u.username), ['proc-1', 'proc-2']);
          } finally {
            await s.close();
          }
        } finally {
          await own.cleanup();
        }
      });

      it('applies only the migrations a database lacks when it is opened again', async () => {
        const own = await dialect.fresh();
        try {
          const first = await createStore({ url: own.url });
          await first.createUser({ username: 'before-upgrade', passwordHash: 'h', isAdmin: false });
          await first.close();
          // Wind the database back to the first migration, as an older release would have left it.
          await dialect.raw(own.url, 'drop index recipients_state_idx');
          await dialect.raw(own.url, "delete from kysely_migration where name = '0002_recipient_state_index'");
          const names = async () => (await dialect.raw(own.url, dialect.indexNames)).map((r) => (r as { name: string }).name);
          assert.ok(!(await names()).includes('recipients_state_idx'));

          const second = await createStore({ url: own.url });
          try {
            assert.ok((await names()).includes('recipients_state_idx'));
            assert.ok(await second.getUserByName('before-upgrade'));
            const applied = await dialect.raw(own.url, 'select name from kysely_migration order by name');
            assert.deepEqual(applied.map((r) => (r as { name: string }).name), ['0001_initial', '0002_recipient_state_index']);
          } finally {
            await second.close();
          }
        } finally {
          await own.cleanup();
        }
      });

      it('keeps a finished row across close and reopen, and migrating again changes nothing', async () => {
        const own = await dialect.fresh();
        try {
          const first = await createStore({ url: own.url });
          const u = await first.createUser({ username: 'durable', passwordHash: 'h', isAdmin: true });
          const g = await first.createGroup({ name: 'kept', multicastAddress: '239.3.0.1', multicastPort: 7000, createdBy: u.id });
          const pieces = [sha('p0'), sha('p1')];
          await first.putBlob({ sha256: sha('durable bytes'), size: 5, pieceSize: 4, pieces, createdAt: 3 });
          const f = await first.createFile({ groupId: g.id, name: 'kept.txt', type: 'txt', sha256: sha('durable bytes'), size: 5, sharedBy: u.id, sharedAt: 4 });
          await first.migrate();
          await first.close();
          await first.close(); // a second close is harmless

          const second = await createStore({ url: own.url });
          try {
            await second.migrate();
            assert.deepEqual(await second.getUserByName('durable'), u);
            assert.deepEqual(await second.getGroupByName('kept'), g);
            assert.deepEqual(await second.getFile(f.id), f);
            assert.deepEqual((await second.getBlob(sha('durable bytes')))?.pieces, pieces);
            assert.equal(await second.countUsers(), 1);
            // The unique constraints survived too.
            await rejectsWith(second.createUser({ username: 'durable', passwordHash: 'x', isAdmin: false }), ErrorCode.USER_EXISTS);
          } finally {
            await second.close();
          }
        } finally {
          await own.cleanup();
        }
      });
    });
  });
}

describe('parseStoreUrl', () => {
  it('reads SQLite paths in their usual spellings', () => {
    assert.deepEqual(parseStoreUrl('sqlite:/var/lib/shoal/shoal.db'), { dialect: 'sqlite', file: '/var/lib/shoal/shoal.db' });
    assert.deepEqual(parseStoreUrl('sqlite:///var/lib/shoal/shoal.db'), { dialect: 'sqlite', file: '/var/lib/shoal/shoal.db' });
    assert.deepEqual(parseStoreUrl('sqlite:data/shoal.db'), { dialect: 'sqlite', file: 'data/shoal.db' });
    assert.deepEqual(parseStoreUrl('/tmp/x.db'), { dialect: 'sqlite', file: '/tmp/x.db' });
    assert.deepEqual(parseStoreUrl('file:///tmp/x.db'), { dialect: 'sqlite', file: '/tmp/x.db' });
    assert.deepEqual(parseStoreUrl('sqlite::memory:'), { dialect: 'sqlite', file: ':memory:' });
  });

  it('reads PostgreSQL URLs', () => {
    assert.deepEqual(parseStoreUrl('postgres://u@127.0.0.1:5432/db'), { dialect: 'postgres', url: 'postgres://u@127.0.0.1:5432/db' });
    assert.deepEqual(parseStoreUrl('postgresql://h/db'), { dialect: 'postgres', url: 'postgresql://h/db' });
  });

  it('refuses empty and unknown URLs with VALIDATION_FAILED', () => {
    for (const bad of ['', 'sqlite:', 'mysql://h/db']) {
      assert.throws(() => parseStoreUrl(bad), (err: unknown) => isShoalError(err, ErrorCode.VALIDATION_FAILED));
    }
  });
});

describe('createStore', () => {
  it('answers UNREACHABLE when no PostgreSQL server listens at the URL', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    await assert.rejects(createStore({ url: 'postgres://postgres@127.0.0.1:1/none' }), (err: unknown) =>
      isShoalError(err, ErrorCode.UNREACHABLE),
    );
  });

  it('fails with a clear error when the SQLite file cannot be created', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-store-'));
    try {
      const notADir = path.join(dir, 'plain-file');
      await writeFile(notADir, 'x');
      await assert.rejects(createStore({ url: `sqlite:${path.join(notADir, 'shoal.db')}` }), (err: unknown) =>
        isShoalError(err, ErrorCode.INTERNAL) && err.message.includes('cannot open the SQLite database'),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps SQLite files in WAL mode', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-store-'));
    const file = path.join(dir, 'shoal.db');
    try {
      const s = await createStore({ url: file });
      await s.createUser({ username: 'wal', passwordHash: 'h', isAdmin: false });
      await s.close();
      const raw = new SqliteDatabase(file, { readonly: true });
      try {
        assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
        assert.deepEqual(raw.prepare('select username from users').all(), [{ username: 'wal' }]);
      } finally {
        raw.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('opens an in-memory SQLite store for quick use', async () => {
    const s = await createStore({ url: 'sqlite::memory:' });
    try {
      await s.createUser({ username: 'mem', passwordHash: 'h', isAdmin: false });
      assert.equal(await s.countUsers(), 1);
    } finally {
      await s.close();
    }
  });
});
