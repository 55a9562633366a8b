/**
 * Child processes for tests that kill things: an agent (agent-child.ts) or a coordinator
 * (coordinator-child.ts), started with tsx, waited for until they print `ready …`, killed by PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Child {
  proc: ChildProcess;
  /** What followed `ready ` on the child's first line. */
  ready: string;
  /** Sends a signal to the child (by PID). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the child has exited. */
  exited: Promise<void>;
}

/** Starts `script` (a path relative to this folder) with tsx and waits for its `ready` line (bounded). */
export function startChild(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<Child> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    if (process.env.SHOAL_TEST_CHILD_LOGS) process.stderr.write(d);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${script} did not start: ${stderr}`));
    }, timeoutMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^ready (.*)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, ready: m[1].trim(), kill: (s) => void proc.kill(s), exited });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before ready: ${stderr}`));
    });
  });
}

/** Kills a child with SIGKILL (and SIGCONT first, in case it is stopped) and waits for it to exit. */
export async function killChild(c: Child | undefined): Promise<void> {
  if (!c || c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.kill('SIGCONT');
  c.kill('SIGKILL');
  await c.exited;
}
