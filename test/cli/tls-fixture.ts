/**
 * Test support: a self-signed certificate and its SHA-256 fingerprint, made with `selfsigned`, for tests of the
 * pinned transport against real TLS servers. Not used outside tests.
 */
import { X509Certificate } from 'node:crypto';
import selfsigned from 'selfsigned';

/** A PEM key pair and certificate for `localhost` / 127.0.0.1, with its SHA-256 fingerprint (`AB:CD:…`). */
export interface TestCertificate {
  key: string;
  cert: string;
  fingerprint: string;
}

/** Generates a fresh self-signed certificate (2048-bit RSA, valid one day); takes a few hundred ms. */
export function makeTestCertificate(commonName = 'localhost'): TestCertificate {
  const pems = selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    days: 1,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}
