/**
 * The authorization table: every route of src/protocol/api.ts × every role → the expected status, generated
 * from the route table plus the expectations below (a route without an expectation fails the test).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { routes, type RouteName } from '../../src/protocol/api.ts';
import { startTestCoordinator, codeOf, type CallOptions, type TestCoordinator } from './harness.ts';
import { createTestDatabase, pgSkipReason, pgUrl } from '../support/postgres.ts';

const roles = ['anonymous', 'user', 'nonMember', 'member', 'owner', 'admin'] as const;
type Role = (typeof roles)[number];

/** Usernames of the role-holders; `pending` has a pending join request (the non-member). */
const people = { user: 'plain', nonMember: 'pending', member: 'member', owner: 'owner' } as const;
const password = 'password-for-tests';

interface Fixture {
  /** A group where owner/owner2 own, member/extra are members, pending has asked to join, admin is not a member. */
  group: string;
  /** A file shared into it by `member`. */
  fileId: string;
  /** A pending delivery of that file (created by admin). */
  deliveryId: string;
}

interface Built extends CallOptions {
  path: string;
}

interface Case {
  /** Status for callers that pass the access check. */
  ok: number;
  /** Per-role statuses that differ from what the access level implies. */
  except?: Partial<Record<Role, number>>;
  /** True when the call changes state (a fresh fixture per role). */
  mutates?: boolean;
  build(f: Fixture, role: Role, tokenOf: (r: Role) => Promise<string | undefined>): Promise<Built> | Built;
}

let seq = 0;
const fresh = (p: string) => `${p}${++seq}`;

const cases: Record<RouteName, Case> = {
  register: {
    ok: 200,
    build: () => ({ path: '/auth/register', json: { username: fresh('reg'), password } }),
  },
  login: { ok: 200, build: () => ({ path: '/auth/login', json: { username: people.member, password } }) },
  logout: { ok: 204, mutates: true, build: () => ({ path: '/auth/logout' }) },
  whoami: { ok: 200, build: () => ({ path: '/auth/me' }) },
  serverInfo: { ok: 200, build: () => ({ path: '/info' }) },

  listUsers: { ok: 200, build: () => ({ path: '/users' }) },
  createUser: { ok: 200, build: () => ({ path: '/users', json: { username: fresh('made'), password } }) },
  updateUser: { ok: 200, build: () => ({ path: '/users/extra', json: { isAdmin: false } }) },
  deleteUser: { ok: 204, mutates: true, build: () => ({ path: `/users/${people.user}` }) },
  userGroups: { ok: 200, build: () => ({ path: `/users/${people.member}/groups` }) },

  listGroups: { ok: 200, build: () => ({ path: '/groups' }) },
  myGroups: { ok: 200, build: () => ({ path: '/me/groups' }) },
  myRequests: { ok: 200, build: () => ({ path: '/me/requests' }) },
  createGroup: { ok: 200, build: () => ({ path: '/groups', json: { name: fresh('made-') } }) },
  getGroup: { ok: 200, build: (f) => ({ path: `/groups/${f.group}` }) },
  deleteGroup: { ok: 204, mutates: true, build: (f) => ({ path: `/groups/${f.group}` }) },
  listMembers: { ok: 200, build: (f) => ({ path: `/groups/${f.group}/members` }) },
  addMember: {
    ok: 200,
    mutates: true,
    build: (f) => ({ path: `/groups/${f.group}/members/outsider`, json: {} }),
  },
  removeMember: { ok: 204, mutates: true, build: (f) => ({ path: `/groups/${f.group}/members/extra` }) },
  // Already a member → 409; a pending request → 409; admins are not members of the fixture group.
  joinGroup: {
    ok: 200,
    mutates: true,
    except: { nonMember: 409, member: 409, owner: 409 },
    build: (f) => ({ path: `/groups/${f.group}/join` }),
  },
  // Leaving a group you are not in is refused even for an admin.
  leaveGroup: {
    ok: 204,
    mutates: true,
    except: { admin: 403 },
    build: (f) => ({ path: `/groups/${f.group}/leave` }),
  },
  listRequests: { ok: 200, build: () => ({ path: '/requests' }) },
  approveRequest: {
    ok: 200,
    mutates: true,
    build: (f) => ({ path: `/groups/${f.group}/requests/${people.nonMember}/approve` }),
  },
  denyRequest: {
    ok: 200,
    mutates: true,
    build: (f) => ({ path: `/groups/${f.group}/requests/${people.nonMember}/deny` }),
  },

  shareFile: {
    ok: 200,
    build: (f) => ({ path: `/groups/${f.group}/files?name=${fresh('doc')}.txt`, raw: Buffer.from('hello') }),
  },
  listFiles: { ok: 200, build: (f) => ({ path: `/groups/${f.group}/files` }) },
  getFile: { ok: 200, build: (f) => ({ path: `/groups/${f.group}/files/${f.fileId}` }) },
  downloadFile: { ok: 200, build: (f) => ({ path: `/groups/${f.group}/files/${f.fileId}/content` }) },
  unshareFile: { ok: 204, mutates: true, build: (f) => ({ path: `/groups/${f.group}/files/${f.fileId}` }) },

  // Admins see everything; owners their groups; anyone else is refused.
  audit: { ok: 200, except: { user: 403, nonMember: 403, member: 403 }, build: () => ({ path: '/audit' }) },

  listReceivers: { ok: 200, build: () => ({ path: '/receivers' }) },
  // No agent is connected in this test: everyone who may ask gets AGENT_NOT_FOUND.
  checkReceiver: { ok: 404, build: () => ({ path: '/receivers/no-such-agent/check' }) },
  listPending: { ok: 200, build: (f) => ({ path: `/groups/${f.group}/pending` }) },
  addPending: {
    ok: 200,
    mutates: true,
    build: (f) => ({ path: `/groups/${f.group}/pending`, json: { fileId: f.fileId } }),
  },
  sendPending: { ok: 200, mutates: true, build: (f) => ({ path: `/groups/${f.group}/pending/send` }) },
  cancelPending: {
    ok: 204,
    mutates: true,
    build: (f) => ({ path: `/groups/${f.group}/pending/${f.deliveryId}` }),
  },
  sendDirect: {
    ok: 200,
    build: () => ({
      path: `/direct?to=${people.member}&name=${fresh('direct')}.bin`,
      raw: Buffer.from('direct bytes'),
    }),
  },
  // Only those who may see a delivery learn that it exists.
  getDelivery: {
    ok: 200,
    except: { user: 404, nonMember: 404 },
    build: (f) => ({ path: `/deliveries/${f.deliveryId}` }),
  },
  // Holders and tickets are for machines that will fetch: members and 1:1 recipients, not admins as such.
  fileHolders: {
    ok: 200,
    except: { user: 404, nonMember: 404, admin: 404 },
    build: (f) => ({ path: `/files/${f.fileId}/holders` }),
  },
  pushFile: {
    ok: 200,
    mutates: true,
    build: (f) => ({ path: `/groups/${f.group}/push`, json: { fileId: f.fileId, rateMbit: 50 } }),
  },
  // One group's transfers are for its owners and admins (the query names the group, not the path).
  listTransfers: {
    ok: 200,
    except: { user: 403, nonMember: 403, member: 403 },
    build: (f) => ({ path: `/transfers?group=${f.group}` }),
  },
};

/** The status the access level implies for a role when the call is otherwise fine. */
function expected(name: RouteName, role: Role): number {
  const c = cases[name];
  if (role !== 'anonymous' && c.except?.[role] !== undefined) return c.except[role] as number;
  const access = routes[name].access;
  if (access === 'anonymous') return c.except?.anonymous ?? c.ok;
  if (role === 'anonymous') return 401;
  if (role === 'admin') return c.ok;
  switch (access) {
    case 'user':
      return c.ok;
    case 'member':
      return role === 'member' || role === 'owner' ? c.ok : 403;
    case 'owner':
      return role === 'owner' ? c.ok : 403;
    case 'admin':
      return 403;
  }
}

function authorizationTable(dialect: string, makeDb: () => Promise<{ url?: string; drop(): Promise<void> }>) {
  describe(`authorization table (${dialect})`, () => {
    let tc: TestCoordinator;
    let shared: Fixture;
    const tokens = new Map<Role, string>();

    const api = (method: string, path: string, opts: CallOptions = {}) =>
      tc.client.call(method, `/api/v1${path}`, opts);
    const must = async (method: string, path: string, opts: CallOptions, status: number) => {
      const a = await api(method, path, opts);
      assert.equal(a.status, status, `${method} ${path}: ${JSON.stringify(a.body)}`);
      return a;
    };
    const ensureUser = async (username: string) => {
      const a = await api('POST', '/users', { token: tc.adminToken, json: { username, password } });
      assert.ok(a.status === 200 || codeOf(a) === 'USER_EXISTS', JSON.stringify(a.body));
    };

    const makeFixture = async (): Promise<Fixture> => {
      const admin = tc.adminToken;
      const group = fresh('g');
      await must('POST', '/groups', { token: admin, json: { name: group } }, 200);
      for (const [u, role] of [
        ['owner', 'owner'],
        ['owner2', 'owner'],
        ['member', 'member'],
        ['extra', 'member'],
      ] as const) {
        await ensureUser(u);
        await must('PUT', `/groups/${group}/members/${u}`, { token: admin, json: { role } }, 200);
      }
      await must('DELETE', `/groups/${group}/members/admin`, { token: admin }, 204);
      await must('POST', `/groups/${group}/join`, { token: tokens.get('nonMember') }, 200);
      const up = await must(
        'POST',
        `/groups/${group}/files?name=shared.txt`,
        { token: tokens.get('member'), raw: Buffer.from(`bytes of ${group}`) },
        200,
      );
      const fileId = (up.body as { file: { id: string } }).file.id;
      const d = await api('POST', `/groups/${group}/pending`, { token: admin, json: { fileId } });
      const deliveryId =
        d.status === 200 ? (d.body as { delivery: { id: string } }).delivery.id : 'no-delivery';
      return { group, fileId, deliveryId };
    };

    let db: { url?: string; drop(): Promise<void> } | undefined;
    before(async () => {
      db = await makeDb();
      tc = await startTestCoordinator({ storeUrl: db.url });
      for (const u of [people.user, people.nonMember, 'outsider']) await ensureUser(u);
      for (const u of ['owner', 'owner2', 'member', 'extra']) await ensureUser(u);
      tokens.set('admin', tc.adminToken);
      for (const role of ['user', 'nonMember', 'member', 'owner'] as const)
        tokens.set(role, await tc.client.login(people[role], password));
      shared = await makeFixture();
    });
    after(async () => {
      await tc?.close();
      await db?.drop();
    });

    it('has an expectation for every route of the table', () => {
      const missing = Object.keys(routes).filter((r) => !(r in cases));
      assert.deepEqual(missing, []);
    });

    for (const name of Object.keys(routes) as RouteName[]) {
      it(`${routes[name].method} ${routes[name].path} answers each role as its access (${routes[name].access}) says`, async () => {
        const c = cases[name];
        const got: Record<string, number> = {};
        const want: Record<string, number> = {};
        for (const role of roles) {
          const f = c.mutates ? await makeFixture() : shared;
          // Logging out, or deleting the plain user, must not spoil the shared tokens.
          let token = role === 'anonymous' ? undefined : tokens.get(role);
          if (name === 'logout' && role !== 'anonymous')
            token = await tc.client.login(
              role === 'admin' ? 'admin' : people[role],
              role === 'admin' ? 'admin-password-for-tests' : password,
            );
          if (name === 'deleteUser') await ensureUser(people.user);
          const b = await c.build(f, role, async (r) => tokens.get(r));
          const a = await api(routes[name].method, b.path, { ...b, token });
          got[role] = a.status;
          want[role] = expected(name, role);
          if (name === 'deleteUser' && a.status === 204)
            tokens.set(
              'user',
              await (async () => {
                await ensureUser(people.user);
                return tc.client.login(people.user, password);
              })(),
            );
        }
        assert.deepEqual(got, want);
      });
    }

    it('a removed member loses access at once', async () => {
      const f = await makeFixture();
      const token = tokens.get('member');
      assert.equal((await api('GET', `/groups/${f.group}/files`, { token })).status, 200);
      await must('DELETE', `/groups/${f.group}/members/member`, { token: tokens.get('owner') }, 204);
      const a = await api('GET', `/groups/${f.group}/files`, { token });
      assert.equal(a.status, 403);
      assert.equal(codeOf(a), 'NOT_A_MEMBER');
      assert.equal((await api('GET', `/groups/${f.group}/files/${f.fileId}/content`, { token })).status, 403);
    });

    it('answers 404 GROUP_NOT_FOUND for an unknown group before any 403', async () => {
      const a = await api('GET', '/groups/no-such-group/files', { token: tokens.get('user') });
      assert.equal(a.status, 404);
      assert.equal(codeOf(a), 'GROUP_NOT_FOUND');
    });

    it('refuses a forged or logged-out token with 401', async () => {
      const a = await api('GET', '/auth/me', { token: 'A'.repeat(43) });
      assert.equal(a.status, 401);
      assert.equal(codeOf(a), 'UNAUTHENTICATED');
      const t = await tc.client.login(people.member, password);
      await must('POST', '/auth/logout', { token: t }, 204);
      assert.equal((await api('GET', '/auth/me', { token: t })).status, 401);
    });
  });
}

authorizationTable('SQLite', async () => ({ url: undefined, drop: async () => undefined }));
if (pgUrl()) authorizationTable('PostgreSQL', () => createTestDatabase());
else console.log(`# authorization table on PostgreSQL: ${pgSkipReason}`);
