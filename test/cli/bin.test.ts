/**
 * End-to-end checks of the real `shoal` binary (bin/shoal.js) in child processes: `shoal server` prints its
 * URL, fingerprint and admin password once, keeps its certificate across restarts, serves `shoal login` and
 * `shoal whoami` from other processes, and stops cleanly on SIGTERM with exit code 0.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './cli-harness.ts';

const bin = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url));
/** Upper bound for one child process step, in ms (a bound, not an assertion on speed). */
const stepTimeoutMs = 60_000;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runBin(args: string[], env: Record<string, string>, stdin?: string): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`shoal ${args.join(' ')} did not finish in ${stepTimeoutMs} ms\n${stderr}`));
    }, stepTimeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

/** Starts `shoal server --json` and resolves with its parsed banner once printed. */
function startServer(
  dataDir: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; info: { url: string; fingerprint: string; adminPassword?: string } }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, 'server', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--json'],
      {
        env: { ...process.env, SHOAL_LOG: 'warn', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`shoal server printed nothing parsable in ${stepTimeoutMs} ms\n${stdout}\n${stderr}`));
    }, stepTimeoutMs);
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => {
      stdout += d;
      try {
        const info = JSON.parse(stdout);
        clearTimeout(timer);
        resolve({ child, info });
      } catch {
        // Not complete yet.
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`shoal server exited with ${code}\n${stderr}`));
    });
  });
}

function stopServer(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => child.kill('SIGKILL'), stepTimeoutMs);
    child.removeAllListeners('exit');
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

describe('the shoal binary', () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  let server: ChildProcess | undefined;

  before(async () => {
    tmp = await tempDir();
  });

  after(async () => {
    if (server) await stopServer(server);
    await tmp?.cleanup();
  });

  it('runs a coordinator that other shoal processes log in to, and stops cleanly on SIGTERM', async () => {
    const dataDir = path.join(tmp.dir, 'data');
    const home = path.join(tmp.dir, 'home');
    await mkdir(home);
    const env = { SHOAL_HOME: home };
    const first = await startServer(dataDir, {});
    server = first.child;
    const { url, fingerprint, adminPassword } = first.info;
    assert.match(url, /^https:\/\/(127\.0\.0\.1|localhost):\d+$/);
    assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(adminPassword, 'the admin password is printed on first start');

    const login = await runBin(
      ['login', url, '--user', 'admin', '--password-stdin', '--fingerprint', fingerprint],
      env,
      `${adminPassword}\n`,
    );
    assert.equal(login.code, 0, login.stderr);
    const who = await runBin(['whoami', '--json'], env);
    assert.equal(who.code, 0, who.stderr);
    assert.equal(JSON.parse(who.stdout).user.username, 'admin');

    assert.equal(await stopServer(server), 0);
    server = undefined;

    const second = await startServer(dataDir, {});
    server = second.child;
    assert.equal(second.info.fingerprint, fingerprint, 'the certificate is reused');
    assert.equal(second.info.adminPassword, undefined, 'the admin password is printed only once');
    assert.equal(await stopServer(server), 0);
    server = undefined;
  });

  it('exits with code 3 on a wrong password', async () => {
    const dataDir = path.join(tmp.dir, 'data-2');
    const home = path.join(tmp.dir, 'home-2');
    await mkdir(home);
    const started = await startServer(dataDir, { SHOAL_ADMIN_PASSWORD: 'the-right-password' });
    server = started.child;
    const r = await runBin(
      ['login', started.info.url, '--user', 'admin', '--password-stdin'],
      { SHOAL_HOME: home },
      'the-wrong-password\n',
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^shoal: /m);
    assert.equal(await stopServer(server), 0);
    server = undefined;
  });
});
