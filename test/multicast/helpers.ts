/** Shared setup of the multicast tests: temp dirs, random files and their manifests, loopback checks. */
import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../src/protocol/api.ts';
import { hashFile } from '../../src/transfer/pieces/hash-file.ts';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `size` random bytes to dir/name and returns its manifest. */
export async function randomFile(dir: string, name: string, size: number, pieceSize: number): Promise<{ path: string; manifest: Manifest; bytes: Buffer }> {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, bytes);
  const content = await hashFile(path, pieceSize);
  return { path, manifest: { name, ...content }, bytes };
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Files left in `dir` whose names say they are partial. */
export async function partialsIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.shoal-'));
}

let groupSeq = Math.floor(Math.random() * 200);
/** A fresh group address per test, so that parallel test files do not hear each other. */
export function nextGroup(): string {
  groupSeq = (groupSeq + 1) % 250;
  return `239.255.${77 + Math.floor(Math.random() * 50)}.${groupSeq + 1}`;
}

/** A free UDP port on loopback (bound then released). */
export async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Null when loopback multicast works here, else why not (tests skip with that reason). */
export async function loopbackMulticastProblem(): Promise<string | null> {
  const group = nextGroup();
  const port = await freePort();
  const r = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const s = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      r.once('error', reject);
      r.bind(port, group, () => resolve());
    });
    r.addMembership(group, '127.0.0.1');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    s.setMulticastInterface('127.0.0.1');
    s.setMulticastLoopback(true);
    const got = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 1000);
      r.once('message', () => { clearTimeout(t); resolve(true); });
    });
    for (let i = 0; i < 5; i++) s.send(Buffer.from('probe'), port, group);
    return (await got) ? null : 'multicast datagrams sent on 127.0.0.1 never arrived (loopback multicast disabled?)';
  } catch (err) {
    return `loopback multicast unavailable: ${(err as Error).message}`;
  } finally {
    r.close();
    s.close();
  }
}
