/**
 * Test support for the CLI: runs `shoal` in-process with captured stdout/stderr, its own SHOAL_HOME and
 * optional stdin, and starts a real coordinator (SQLite in a temp dir, TLS on 127.0.0.1 port 0).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { run, type CliIo } from '../../src/cli/main.ts';
import { silentLogger } from '../../src/logger.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not JSON). */
  json<T = Record<string, unknown>>(): T;
}

export interface RunOptions {
  /** SHOAL_HOME of this "user". */
  home: string;
  /** Text on stdin (e.g. a password for --password-stdin). */
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
  signal?: AbortSignal;
}

/** A stdout/stderr stand-in (not a TTY) that keeps everything written to it in `text`. */
export class Capture {
  text = '';
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** Runs `shoal ...args` in-process and captures what it prints. */
export async function shoal(args: string[], opts: RunOptions): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const stdin = Readable.from(
    opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)],
  ) as unknown as CliIo['stdin'];
  const io: CliIo = {
    stdout,
    stderr,
    stdin,
    env: { PATH: process.env.PATH, HOME: opts.home, SHOAL_HOME: opts.home, ...opts.env },
    cwd: opts.cwd ?? opts.home,
    signal: opts.signal,
  };
  const code = await run(args, io);
  return {
    code,
    stdout: stdout.text,
    stderr: stderr.text,
    json<T>() {
      try {
        return JSON.parse(stdout.text) as T;
      } catch {
        throw new Error(
          `stdout of "shoal ${args.join(' ')}" is not JSON (exit ${code}):\n${stdout.text}\nstderr:\n${stderr.text}`,
        );
      }
    },
  };
}

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix = 'shoal-cli-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface TestCoordinator {
  url: string;
  fingerprint: string;
  adminPassword: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts a real coordinator over SQLite in `dataDir` on 127.0.0.1 (`port` 0 = any free port). */
export async function startCoordinator(
  dataDir: string,
  opts: { port?: number; adminPassword?: string; registration?: boolean } = {},
): Promise<TestCoordinator> {
  const { createStore } = await import('../../src/store/create-store.ts');
  const { createCoordinator } = await import('../../src/coordinator/coordinator.ts');
  const adminPassword = opts.adminPassword ?? 'admin-password-1';
  const store = await createStore({ url: `sqlite:${path.join(dataDir, 'shoal.db')}` });
  const coordinator = createCoordinator(
    { store, logger: silentLogger },
    { dataDir, host: '127.0.0.1', port: opts.port ?? 0, adminPassword, registration: opts.registration },
  );
  const started = await coordinator.start();
  return {
    url: started.url,
    fingerprint: started.fingerprint,
    adminPassword,
    port: Number(new URL(started.url).port),
    async stop() {
      await coordinator.stop();
      await store.close();
    },
  };
}
