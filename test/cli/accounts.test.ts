/**
 * Accounts and decisions through the CLI: SHOAL_PASSWORD, closed registration, denied join requests,
 * owners added by an admin deciding requests themselves, admin rights granted and revoked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode } from '../../src/cli/exit-codes.ts';
import { shoal, startCoordinator, tempDir, type TestCoordinator } from './cli-harness.ts';

describe('accounts and join decisions through the CLI', () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  let coord: TestCoordinator;
  const homes: Record<string, string> = {};

  before(async () => {
    tmp = await tempDir();
    coord = await startCoordinator(path.join(tmp.dir, 'data'), { registration: false });
    for (const u of ['admin', 'dora', 'eve']) {
      homes[u] = path.join(tmp.dir, u);
      await mkdir(homes[u]);
    }
    const r = await shoal(['login', coord.url, '--user', 'admin', '--fingerprint', coord.fingerprint], {
      home: homes.admin,
      env: { SHOAL_PASSWORD: coord.adminPassword },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /First connection/, 'an explicit fingerprint needs no trust on first use');
  });

  after(async () => {
    await coord?.stop();
    await tmp?.cleanup();
  });

  it('refuses self-registration when the coordinator turned it off (exit 4)', async () => {
    const r = await shoal(['register', coord.url, '--user', 'dora', '--password-stdin'], {
      home: homes.dora,
      stdin: 'dora-password-1\n',
    });
    assert.equal(r.code, ExitCode.FORBIDDEN, r.stderr);
  });

  it('lets an admin create accounts that log in with SHOAL_PASSWORD', async () => {
    for (const u of ['dora', 'eve']) {
      const c = await shoal(['user', 'create', u], {
        home: homes.admin,
        env: { SHOAL_PASSWORD: `${u}-password-1` },
      });
      assert.equal(c.code, 0, c.stderr);
      const l = await shoal(['login', coord.url, '--user', u, '--json'], {
        home: homes[u],
        env: { SHOAL_PASSWORD: `${u}-password-1` },
      });
      assert.equal(l.code, 0, l.stderr);
      assert.equal(l.json<{ user: { username: string } }>().user.username, u);
    }
  });

  it('an owner added by the admin denies a request; the requester sees the decision', async () => {
    assert.equal(
      (await shoal(['group', 'create', 'ops', '--multicast', '239.9.9.9:6000'], { home: homes.admin })).code,
      0,
    );
    const add = await shoal(['group', 'add', 'ops', 'dora', '--owner', '--json'], { home: homes.admin });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.json<{ member: { role: string } }>().member.role, 'owner');

    assert.equal((await shoal(['group', 'join', 'ops'], { home: homes.eve })).code, 0);
    const twice = await shoal(['group', 'join', 'ops'], { home: homes.eve });
    assert.equal(twice.code, ExitCode.CONFLICT, twice.stderr);

    const pending = await shoal(['group', 'requests', '--json'], { home: homes.dora });
    assert.deepEqual(
      pending.json<{ requests: { username: string }[] }>().requests.map((r) => r.username),
      ['eve'],
    );
    const deny = await shoal(['group', 'deny', 'ops', 'eve', '--json'], { home: homes.dora });
    assert.equal(deny.code, 0, deny.stderr);
    assert.equal(deny.json<{ request: { state: string } }>().request.state, 'denied');

    const mine = await shoal(['group', 'requests', '--mine', '--json'], { home: homes.eve });
    const states = mine.json<{ requests: { group: string; state: string }[] }>().requests;
    assert.deepEqual(
      states.map((r) => [r.group, r.state]),
      [['ops', 'denied']],
    );
    const files = await shoal(['file', 'list', 'ops'], { home: homes.eve });
    assert.equal(files.code, ExitCode.FORBIDDEN);

    const notOwner = await shoal(['group', 'approve', 'ops', 'dora'], { home: homes.eve });
    assert.equal(notOwner.code, ExitCode.FORBIDDEN);
  });

  it('grants and revokes admin rights', async () => {
    const grant = await shoal(['user', 'admin', 'eve', '--json'], { home: homes.admin });
    assert.equal(grant.code, 0, grant.stderr);
    assert.equal(grant.json<{ user: { isAdmin: boolean } }>().user.isAdmin, true);
    assert.equal((await shoal(['user', 'list'], { home: homes.eve })).code, 0);
    const revoke = await shoal(['user', 'admin', 'eve', '--revoke', '--json'], { home: homes.admin });
    assert.equal(revoke.json<{ user: { isAdmin: boolean } }>().user.isAdmin, false);
    assert.equal((await shoal(['user', 'list'], { home: homes.eve })).code, ExitCode.FORBIDDEN);
  });

  it('deleting a group is refused to members and allowed to its owner', async () => {
    assert.equal((await shoal(['group', 'delete', 'ops'], { home: homes.eve })).code, ExitCode.FORBIDDEN);
    const del = await shoal(['group', 'delete', 'ops', '--json'], { home: homes.dora });
    assert.equal(del.code, 0, del.stderr);
    const show = await shoal(['group', 'show', 'ops'], { home: homes.admin });
    assert.equal(show.code, ExitCode.NOT_FOUND);
  });
});
