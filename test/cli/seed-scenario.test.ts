/**
 * The seed scenario end to end through the `shoal` CLI against a real coordinator (SQLite, TLS): admin logs in
 * (trust on first use) and creates a group; users register and ask to join; admin approves; one shares a file;
 * another finds it with a search and downloads it; hashes equal. Plus resume, wrong passwords and --json.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode } from '../../src/cli/exit-codes.ts';
import { shoal, startCoordinator, tempDir, type TestCoordinator } from './cli-harness.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('seed scenario through the CLI', () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  let coord: TestCoordinator;
  let adminHome: string;
  let aliceHome: string;
  let bobHome: string;
  const content = randomBytes(1_500_000);
  let fileId = '';

  before(async () => {
    tmp = await tempDir();
    coord = await startCoordinator(path.join(tmp.dir, 'data'));
    adminHome = path.join(tmp.dir, 'admin');
    aliceHome = path.join(tmp.dir, 'alice');
    bobHome = path.join(tmp.dir, 'bob');
    for (const d of [adminHome, aliceHome, bobHome]) await mkdir(d);
  });

  after(async () => {
    await coord?.stop();
    await tmp?.cleanup();
  });

  it('admin logs in, trusting the certificate on first use and saving the session with mode 0600', async () => {
    const r = await shoal(['login', coord.url, '--user', 'admin', '--password-stdin'], {
      home: adminHome,
      stdin: `${coord.adminPassword}\n`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /First connection/);
    assert.ok(r.stderr.includes(coord.fingerprint), 'the fingerprint is shown');
    const cfgFile = path.join(adminHome, 'config.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8'));
    assert.equal(cfg.fingerprint, coord.fingerprint);
    assert.equal(cfg.username, 'admin');
    assert.equal(cfg.url, coord.url);
    assert.ok(cfg.token);
    assert.equal((await stat(cfgFile)).mode & 0o777, 0o600);

    const who = await shoal(['whoami', '--json'], { home: adminHome });
    assert.equal(who.code, 0, who.stderr);
    assert.equal(who.json<{ user: { username: string; isAdmin: boolean } }>().user.isAdmin, true);
  });

  it('admin creates a group', async () => {
    const r = await shoal(['group', 'create', 'lab', '--json'], { home: adminHome });
    assert.equal(r.code, 0, r.stderr);
    const { group } = r.json<{ group: { name: string; multicastAddress: string } }>();
    assert.equal(group.name, 'lab');
    assert.ok(group.multicastAddress);
    const again = await shoal(['group', 'create', 'lab'], { home: adminHome });
    assert.equal(again.code, ExitCode.CONFLICT);
    assert.match(again.stderr, /^shoal: /);
  });

  it('users register (and are logged in), then ask to join', async () => {
    for (const [home, user] of [
      [aliceHome, 'alice'],
      [bobHome, 'bob'],
    ]) {
      const r = await shoal(['register', coord.url, '--user', user, '--password-stdin', '--json'], {
        home,
        stdin: `${user}-password-1\n`,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json<{ user: { username: string } }>().user.username, user);
      const join = await shoal(['group', 'join', 'lab', '--json'], { home });
      assert.equal(join.code, 0, join.stderr);
      assert.equal(join.json<{ request: { state: string } }>().request.state, 'pending');
    }
    const notYet = await shoal(['file', 'list', 'lab'], { home: aliceHome });
    assert.equal(notYet.code, ExitCode.FORBIDDEN, notYet.stderr);
  });

  it('admin sees the requests and approves them', async () => {
    const reqs = await shoal(['group', 'requests', 'lab', '--json'], { home: adminHome });
    assert.equal(reqs.code, 0, reqs.stderr);
    const names = reqs
      .json<{ requests: { username: string; state: string }[] }>()
      .requests.map((r) => r.username)
      .sort();
    assert.deepEqual(names, ['alice', 'bob']);
    for (const user of ['alice', 'bob']) {
      const r = await shoal(['group', 'approve', 'lab', user], { home: adminHome });
      assert.equal(r.code, 0, r.stderr);
    }
    const members = await shoal(['group', 'members', 'lab', '--json'], { home: aliceHome });
    assert.equal(members.code, 0, members.stderr);
    assert.deepEqual(
      members
        .json<{ members: { username: string }[] }>()
        .members.map((m) => m.username)
        .sort(),
      ['admin', 'alice', 'bob'],
    );
  });

  it('alice shares a file', async () => {
    const src = path.join(aliceHome, 'dataset.bin');
    await writeFile(src, content);
    const r = await shoal(['file', 'share', 'lab', 'dataset.bin', '--json'], { home: aliceHome });
    assert.equal(r.code, 0, r.stderr);
    const { file } = r.json<{ file: { id: string; sha256: string; size: number; name: string } }>();
    assert.equal(file.sha256, sha256(content));
    assert.equal(file.size, content.length);
    assert.equal(file.name, 'dataset.bin');
    fileId = file.id;
    assert.match(r.stderr, /share dataset\.bin/, 'plain progress lines go to stderr when not on a terminal');
  });

  it('bob finds it with a search and downloads it; the hash is equal', async () => {
    const list = await shoal(
      [
        'file',
        'list',
        'lab',
        '--search',
        'data',
        '--type',
        'bin',
        '--min-size',
        '1k',
        '--sort',
        'size',
        '--json',
      ],
      { home: bobHome },
    );
    assert.equal(list.code, 0, list.stderr);
    const files = list.json<{ files: { id: string; name: string }[] }>().files;
    assert.deepEqual(
      files.map((f) => f.name),
      ['dataset.bin'],
    );
    const none = await shoal(['file', 'list', 'lab', '--search', 'nothing-like-this', '--json'], {
      home: bobHome,
    });
    assert.deepEqual(none.json<{ files: unknown[] }>().files, []);
    const table = await shoal(['file', 'list', 'lab'], { home: bobHome });
    assert.match(table.stdout, /dataset\.bin/);

    const out = path.join(bobHome, 'downloads');
    const r = await shoal(['file', 'download', 'lab', 'dataset.bin', '--out', out, '--json'], {
      home: bobHome,
    });
    assert.equal(r.code, 0, r.stderr);
    const got = await readFile(path.join(out, 'dataset.bin'));
    assert.equal(sha256(got), sha256(content));
    assert.deepEqual(await readdir(out), ['dataset.bin']);
  });

  it('resumes a partial download, fetching only the rest', async () => {
    const out = path.join(bobHome, 'resume');
    await mkdir(out);
    const have = 600_000;
    await writeFile(path.join(out, 'dataset.bin.part'), content.subarray(0, have));
    const r = await shoal(['file', 'download', 'lab', fileId, '--out', out, '--json'], { home: bobHome });
    assert.equal(r.code, 0, r.stderr);
    const res = r.json<{ resumedFrom: number; fetchedBytes: number; path: string }>();
    assert.equal(res.resumedFrom, have);
    assert.equal(res.fetchedBytes, content.length - have);
    assert.equal(sha256(await readFile(path.join(out, 'dataset.bin'))), sha256(content));
    assert.deepEqual(await readdir(out), ['dataset.bin']);
  });

  it('a .part that does not belong to the file is replaced, and the result still verifies', async () => {
    const out = path.join(bobHome, 'stale');
    await mkdir(out);
    await writeFile(path.join(out, 'dataset.bin.part'), randomBytes(1000));
    const r = await shoal(['file', 'download', 'lab', fileId, '--out', out, '--json'], { home: bobHome });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await readFile(path.join(out, 'dataset.bin'))), sha256(content));
    assert.deepEqual(await readdir(out), ['dataset.bin']);
  });

  it('never overwrites a different file of the same name', async () => {
    const out = path.join(bobHome, 'collide');
    await mkdir(out);
    await writeFile(path.join(out, 'dataset.bin'), 'mine, keep me');
    const r = await shoal(['file', 'download', 'lab', fileId, '--out', out], { home: bobHome });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(path.join(out, 'dataset.bin'), 'utf8'), 'mine, keep me');
    assert.equal(sha256(await readFile(path.join(out, 'dataset (2).bin'))), sha256(content));
    const again = await shoal(['file', 'download', 'lab', fileId, '--out', out], { home: bobHome });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already there/);
    assert.deepEqual((await readdir(out)).sort(), ['dataset (2).bin', 'dataset.bin']);
  });

  it('a wrong password exits with 3 and a clear message, and keeps the saved session', async () => {
    const r = await shoal(['login', coord.url, '--user', 'alice', '--password-stdin'], {
      home: aliceHome,
      stdin: 'not-the-password\n',
    });
    assert.equal(r.code, ExitCode.AUTH);
    assert.match(r.stderr, /^shoal: .*(password|credentials)/im);
    assert.equal(r.stdout, '');
    const who = await shoal(['whoami'], { home: aliceHome });
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /alice/);
  });

  it('prints errors as JSON with --json', async () => {
    const r = await shoal(['group', 'show', 'no-such-group', '--json'], { home: aliceHome });
    assert.equal(r.code, ExitCode.NOT_FOUND);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'GROUP_NOT_FOUND');
  });

  it('admin reads the audit log, manages users and groups, and every --json output parses', async () => {
    const audit = await shoal(['audit', '--group', 'lab', '--json'], { home: adminHome });
    assert.equal(audit.code, 0, audit.stderr);
    const actions = audit.json<{ entries: { action: string }[] }>().entries.map((e) => e.action);
    assert.ok(actions.length >= 3, `audit entries: ${actions.join(', ')}`);

    const created = await shoal(['user', 'create', 'carol', '--password-stdin', '--json'], {
      home: adminHome,
      stdin: 'carol-password-1\n',
    });
    assert.equal(created.code, 0, created.stderr);
    const users = await shoal(['user', 'list', '--json'], { home: adminHome });
    assert.ok(users.json<{ users: { username: string }[] }>().users.some((u) => u.username === 'carol'));
    const add = await shoal(['group', 'add', 'lab', 'carol', '--json'], { home: adminHome });
    assert.equal(add.code, 0, add.stderr);
    const of = await shoal(['group', 'of', 'carol', '--json'], { home: adminHome });
    assert.deepEqual(
      of.json<{ groups: { name: string }[] }>().groups.map((g) => g.name),
      ['lab'],
    );
    const remove = await shoal(['group', 'remove', 'lab', 'carol', '--json'], { home: adminHome });
    assert.equal(remove.code, 0, remove.stderr);
    const del = await shoal(['user', 'delete', 'carol', '--json'], { home: adminHome });
    assert.equal(del.code, 0, del.stderr);
    assert.doesNotThrow(() => del.json());

    const mine = await shoal(['group', 'mine', '--json'], { home: bobHome });
    assert.deepEqual(
      mine.json<{ groups: { name: string }[] }>().groups.map((g) => g.name),
      ['lab'],
    );
    const all = await shoal(['group', 'list', '--json'], { home: bobHome });
    assert.ok(all.json<{ groups: unknown[] }>().groups.length >= 1);
    const notAdmin = await shoal(['user', 'list'], { home: bobHome });
    assert.equal(notAdmin.code, ExitCode.FORBIDDEN);
  });

  it('alice unshares, bob leaves, and logout forgets the token', async () => {
    const un = await shoal(['file', 'unshare', 'lab', 'dataset.bin', '--json'], { home: aliceHome });
    assert.equal(un.code, 0, un.stderr);
    const list = await shoal(['file', 'list', 'lab', '--json'], { home: bobHome });
    assert.deepEqual(list.json<{ files: unknown[] }>().files, []);
    const leave = await shoal(['group', 'leave', 'lab', '--json'], { home: bobHome });
    assert.equal(leave.code, 0, leave.stderr);
    const out = await shoal(['logout', '--json'], { home: bobHome });
    assert.equal(out.code, 0, out.stderr);
    const cfg = JSON.parse(await readFile(path.join(bobHome, 'config.json'), 'utf8'));
    assert.equal(cfg.token, undefined);
    const who = await shoal(['whoami'], { home: bobHome });
    assert.equal(who.code, ExitCode.AUTH);
  });
});
