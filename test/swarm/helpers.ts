/** Shared fixtures of the swarm tests: certificates, sample files, holders over real HTTPS on 127.0.0.1. */
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import type { Manifest } from '../../src/protocol/api.ts';
import { silentLogger } from '../../src/logger.ts';
import { hashFile } from '../../src/transfer/pieces/hash-file.ts';
import {
  createPieceServer, type PieceHandlerDeps, type PieceServer, type PieceServerOptions, type ServedEvent,
} from '../../src/transfer/swarm/piece-server.ts';
import { createPieceRegistry, type PieceSource } from '../../src/transfer/swarm/piece-source.ts';
import { generateTicketKeys, signTicket, type TicketKeys } from '../../src/crypto/tickets.ts';
import type { Holder } from '../../src/transfer/swarm/downloader.ts';

export interface Tls {
  cert: string;
  key: string;
  fingerprint: string;
}

/** A self-signed certificate for 127.0.0.1 and its SHA-256 fingerprint. */
export function makeTls(): Tls {
  const pems = selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keySize: 2048,
    days: 2,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  return { cert: pems.cert, key: pems.private, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}

/** A temp directory removed by the returned cleanup list. */
export class Scratch {
  readonly dirs: string[] = [];
  readonly closers: Array<() => Promise<unknown>> = [];
  async dir(prefix = 'shoal-swarm-'): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }
  async cleanup(): Promise<void> {
    for (const c of this.closers.reverse()) await c().catch(() => undefined);
    for (const d of this.dirs) await rm(d, { recursive: true, force: true });
  }
}

/** A random file of `size` bytes on disk and its manifest. */
export async function sampleFile(scratch: Scratch, size: number, pieceSize: number, name = 'payload.bin'): Promise<{ path: string; data: Buffer; manifest: Manifest }> {
  const dir = await scratch.dir();
  const data = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, data, manifest: { name, ...(await hashFile(path, pieceSize)) } };
}

export interface TestHolder {
  server: PieceServer;
  holder: Holder;
  /** Bytes handed to sockets, all requests together. */
  served: () => number;
  events: ServedEvent[];
}

/** Starts a piece server over `source` (or one holding `file`) and registers its cleanup. */
export async function startHolder(
  scratch: Scratch,
  opts: {
    id: string; keys: TicketKeys; tls: Tls; file?: { manifest: Manifest; path: string }; source?: PieceSource;
    deps?: Partial<PieceHandlerDeps>; options?: Partial<PieceServerOptions>;
  },
): Promise<TestHolder> {
  let source = opts.source;
  if (!source) {
    const reg = createPieceRegistry();
    if (opts.file) reg.addFile(opts.file.manifest, opts.file.path);
    source = reg;
  }
  const events: ServedEvent[] = [];
  const server = createPieceServer(
    { logger: silentLogger, source, publicKey: opts.keys.publicKey, onServed: (e) => events.push(e), ...opts.deps },
    { host: '127.0.0.1', port: 0, tls: opts.tls, ...opts.options },
  );
  await server.start();
  scratch.closers.push(() => server.stop());
  return {
    server,
    holder: { id: opts.id, url: server.url, fingerprint: opts.tls.fingerprint },
    served: () => events.reduce((n, e) => n + e.bytes, 0),
    events,
  };
}

export { generateTicketKeys };

/** A ticket valid for ten minutes. */
export function ticketFor(keys: TicketKeys, sha256: string, user = 'alice'): string {
  return signTicket(keys.privateKey, { user, sha256, expiresAt: Date.now() + 10 * 60_000 });
}
