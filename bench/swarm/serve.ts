/**
 * Benchmark helper: a standalone piece server for one file. Prints one JSON line `{ url }` once listening and
 * serves until stdin closes or SIGTERM. Args: JSON { file, manifest, cert, key (paths), publicKey (raw), host, uploadBytesPerSecond? }.
 */
import { readFile } from 'node:fs/promises';
import { createLogger } from '../../src/logger.ts';
import { createPieceServer } from '../../src/transfer/swarm/piece-server.ts';
import { createPieceRegistry } from '../../src/transfer/swarm/piece-source.ts';

const input = JSON.parse(process.argv[2]) as {
  file: string; manifest: string; cert: string; key: string; publicKey: string; host: string; uploadBytesPerSecond?: number;
};
const manifest = JSON.parse(await readFile(input.manifest, 'utf8'));
const registry = createPieceRegistry();
registry.addFile(manifest, input.file);
let served = 0;
const server = createPieceServer(
  { logger: createLogger({ level: 'warn' }), source: registry, publicKey: input.publicKey, onServed: (e) => (served += e.bytes) },
  { host: input.host, port: 0, tls: { cert: await readFile(input.cert), key: await readFile(input.key) }, uploadBytesPerSecond: input.uploadBytesPerSecond },
);
const { url } = await server.start();
console.log(JSON.stringify({ url }));
const stop = async () => {
  await server.stop();
  console.error(JSON.stringify({ served }));
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
