/**
 * Trust on first use through the CLI: the coordinator's fingerprint is saved at first login; when the same URL
 * later presents another certificate, every command refuses loudly (exit 7) without sending the token, until
 * the user re-trusts it explicitly with --fingerprint.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode } from '../../src/cli/exit-codes.ts';
import { shoal, startCoordinator, tempDir, type TestCoordinator } from './cli-harness.ts';

describe('certificate pinning in the CLI', () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  let first: TestCoordinator | undefined;
  let second: TestCoordinator | undefined;
  let home: string;

  before(async () => {
    tmp = await tempDir();
    home = path.join(tmp.dir, 'home');
    await mkdir(home);
  });

  after(async () => {
    await first?.stop();
    await second?.stop();
    await tmp?.cleanup();
  });

  it('refuses a changed certificate on the same URL and accepts it only when re-trusted explicitly', async () => {
    first = await startCoordinator(path.join(tmp.dir, 'data-1'));
    const url = first.url;
    const login = await shoal(['login', url, '--user', 'admin', '--password-stdin'], {
      home,
      stdin: `${first.adminPassword}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
    const saved = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8'));
    assert.equal(saved.fingerprint, first.fingerprint);
    assert.equal(saved.knownHosts[url], first.fingerprint);

    // The same address now answers with another certificate (another data directory, so a new self-signed one).
    const port = first.port;
    await first.stop();
    first = undefined;
    second = await startCoordinator(path.join(tmp.dir, 'data-2'), { port });
    assert.equal(second.url, url);
    assert.notEqual(second.fingerprint, saved.fingerprint);

    const who = await shoal(['whoami'], { home });
    assert.equal(who.code, ExitCode.NETWORK);
    assert.match(who.stderr, /does not match the pinned fingerprint/);
    assert.match(who.stderr, /--fingerprint/);

    const relogin = await shoal(['login', url, '--user', 'admin', '--password-stdin'], {
      home,
      stdin: `${second.adminPassword}\n`,
    });
    assert.equal(relogin.code, ExitCode.NETWORK);
    assert.match(relogin.stderr, /HAS CHANGED/);
    assert.ok(
      relogin.stderr.includes(second.fingerprint),
      'the new fingerprint is shown so it can be checked',
    );
    const unchanged = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8'));
    assert.equal(
      unchanged.knownHosts[url],
      saved.fingerprint,
      'the old trust is kept until re-trusted explicitly',
    );

    const wrongPin = await shoal(
      ['login', url, '--user', 'admin', '--password-stdin', '--fingerprint', saved.fingerprint],
      {
        home,
        stdin: `${second.adminPassword}\n`,
      },
    );
    assert.equal(wrongPin.code, ExitCode.NETWORK);

    const retrust = await shoal(
      ['login', url, '--user', 'admin', '--password-stdin', '--fingerprint', second.fingerprint],
      {
        home,
        stdin: `${second.adminPassword}\n`,
      },
    );
    assert.equal(retrust.code, 0, retrust.stderr);
    const now = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8'));
    assert.equal(now.fingerprint, second.fingerprint);
    assert.equal(now.knownHosts[url], second.fingerprint);
    const whoNow = await shoal(['whoami', '--json'], { home });
    assert.equal(whoNow.code, 0, whoNow.stderr);
  });

  it('reports an unreachable coordinator with exit code 7', async () => {
    const other = path.join(tmp.dir, 'home-2');
    await mkdir(other);
    const r = await shoal(['login', 'https://127.0.0.1:1', '--user', 'admin', '--password-stdin'], {
      home: other,
      stdin: 'x\n',
    });
    assert.equal(r.code, ExitCode.NETWORK);
    assert.match(r.stderr, /^shoal: cannot reach/);
  });

  it('answers usage errors with exit code 2', async () => {
    const r = await shoal(['group', 'create'], { home });
    assert.equal(r.code, ExitCode.USAGE);
    const bad = await shoal(['file', 'list', 'lab', '--min-size', 'lots'], { home });
    assert.equal(bad.code, ExitCode.USAGE);
    const help = await shoal(['--help'], { home });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: shoal/);
  });
});
