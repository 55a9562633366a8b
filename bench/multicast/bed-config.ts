/** Configuration shared by the bed sender and receivers (one JSON file written by the test or the bench). */
import { readFile } from 'node:fs/promises';
import type { Manifest } from '../../src/protocol/api.ts';

export interface BedConfig {
  /** Path of the source file (sender). */
  path: string;
  manifest: Manifest;
  /** AES-256-GCM key, hex. */
  keyHex: string;
  transferId: string;
  group: string;
  port: number;
  chunkSize: number;
  /** Bed network prefix, e.g. "10.77.0": sender .1, receiver K at .(10+K). */
  net: string;
  /** Receiver count. */
  n: number;
  /** Directory under which receiver K writes into rK/. */
  destRoot: string;
  /** TCP port of each receiver's control server (status and shutdown, bed network only). */
  controlPort: number;
  rateBps: number;
  minRateBps?: number;
  maxPasses?: number;
  /** Repair with parity fragments (default true). */
  parity?: boolean;
  /** Receivers exit by themselves once their copy is verified (peers.sh): the sender then neither waits for
   * them nor tells them to go. */
  receiversExit?: boolean;
  /** Bound on every process, ms. */
  timeoutMs: number;
}

export async function readBedConfig(path: string): Promise<BedConfig> {
  return JSON.parse(await readFile(path, 'utf8')) as BedConfig;
}

export const receiverIp = (c: BedConfig, k: number) => `${c.net}.${10 + k}`;
export const senderIp = (c: BedConfig) => `${c.net}.1`;
