/**
 * The coordinator's TLS certificate and its Ed25519 ticket-signing key. Both live in the data directory:
 * created on first start (a self-signed certificate via `selfsigned`), reused afterwards. A certificate
 * given by the operator replaces the self-signed one.
 */
import {
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import type { Logger } from '../logger.ts';

/** PEM certificate and key with the certificate's SHA-256 fingerprint (`AB:CD:…`, as Node's fingerprint256). */
export interface TlsMaterial {
  cert: string;
  key: string;
  fingerprint: string;
}

/** The Ed25519 key pair that signs piece tickets; `publicKeyPem` is SPKI PEM, published by GET /info. */
export interface TicketKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
}

/** SHA-256 fingerprint of a PEM certificate, upper-case hex pairs joined by colons. */
export function certificateFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

/** Returns the given certificate, or the one in `<dataDir>/tls/`, creating it on first use. */
export async function loadTlsMaterial(
  deps: { logger: Logger },
  options: { dataDir: string; tls?: { cert: string; key: string } },
): Promise<TlsMaterial> {
  if (options.tls) {
    return {
      cert: options.tls.cert,
      key: options.tls.key,
      fingerprint: certificateFingerprint(options.tls.cert),
    };
  }
  const dir = join(options.dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const [cert, key] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (cert && key) return { cert, key, fingerprint: certificateFingerprint(cert) };

  const host = hostname();
  const generated = await new Promise<{ cert: string; private: string }>((resolve, reject) => {
    selfsigned.generate(
      [{ name: 'commonName', value: `shoal-${host}` }],
      {
        days: 3650,
        keySize: 2048,
        algorithm: 'sha256',
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          {
            name: 'subjectAltName',
            altNames: [
              { type: 2, value: 'localhost' },
              { type: 2, value: host },
              { type: 7, ip: '127.0.0.1' },
              { type: 7, ip: '::1' },
            ],
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
  await writeAtomic(keyPath, generated.private);
  await writeAtomic(certPath, generated.cert);
  const fingerprint = certificateFingerprint(generated.cert);
  deps.logger.info('created a self-signed certificate', { fingerprint });
  return { cert: generated.cert, key: generated.private, fingerprint };
}

/** Returns the ticket-signing key from `<dataDir>/ticket-key.pem`, creating it on first use. */
export async function loadTicketKeys(
  deps: { logger: Logger },
  options: { dataDir: string },
): Promise<TicketKeys> {
  const path = join(options.dataDir, 'ticket-key.pem');
  let pem = await readIfExists(path);
  if (!pem) {
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeAtomic(path, pem);
    deps.logger.info('created the ticket-signing key');
  }
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
