/** Shared pieces of the swarm benchmarks: random files, certificates, bounded child processes, bed commands. */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import selfsigned from 'selfsigned';

export const testbed = process.env.TESTBED ?? '/work/shared/bench/testbed.sh';
export const node = [process.execPath, '--import', 'tsx'];

/** Command-line option `--name value`, or `def`. */
export function opt(name: string, def: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
}

/** `cmd` run inside bed namespace `ns`, or as is when ns is null. */
export function inBed(ns: string | null, cmd: string[]): string[] {
  return ns ? [testbed, 'exec', ns, ...cmd] : cmd;
}

/** Writes `mib` MiB of random bytes to `path`. */
export async function writeRandomFile(path: string, mib: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const ws = createWriteStream(path);
    ws.on('error', reject);
    let left = mib;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!ws.write(randomFillSync(Buffer.alloc(1024 * 1024)))) return void ws.once('drain', pump);
      }
      ws.end(resolve);
    };
    pump();
  });
}

/** A self-signed certificate written as cert.pem / key.pem in `dir`, with its SHA-256 fingerprint. */
export async function writeCert(dir: string, host: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const pems = selfsigned.generate([{ name: 'commonName', value: host }], { keySize: 2048, days: 1, algorithm: 'sha256' });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await writeFile(cert, pems.cert);
  await writeFile(key, pems.private);
  return { cert, key, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}

/** A long-lived child speaking JSON lines on stdout; `next()` waits (bounded) for its next line. */
export interface LineChild {
  proc: ChildProcess;
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  send(obj: unknown): void;
  close(): void;
}

export function startLineChild(cmd: string[]): LineChild {
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const queue: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  let exited = false;
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const w = waiters.shift();
    if (w) w(line);
    else queue.push(line);
  });
  proc.on('exit', () => (exited = true));
  return {
    proc,
    next(timeoutMs = 10 * 60_000) {
      const ready = queue.shift();
      if (ready) return Promise.resolve(JSON.parse(ready));
      if (exited) return Promise.reject(new Error('child exited'));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('child did not answer in time')), timeoutMs);
        const onExit = () => reject(new Error(`child exited (${proc.exitCode})`));
        proc.once('exit', onExit);
        waiters.push((line) => {
          clearTimeout(timer);
          proc.off('exit', onExit);
          resolve(JSON.parse(line));
        });
      });
    },
    send(obj) {
      proc.stdin!.write(`${JSON.stringify(obj)}\n`);
    },
    close() {
      proc.stdin!.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => clearTimeout(t));
    },
  };
}
