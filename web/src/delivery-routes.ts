/**
 * Calls for deliveries and presence (pending list, send now, receivers, 1:1 send). They go through the same
 * route table as everything else; a server whose table lacks one makes the page say the feature is unavailable
 * instead of failing.
 */
import { ErrorCode, ShoalError } from '../../src/protocol/errors.ts';
import type { Api } from './api.ts';

/** One file × one recipient of a pending list. */
export interface PendingEntry {
  deliveryId: string;
  fileId: string;
  fileName: string;
  size: number;
  username: string;
  state: 'pending' | 'receiving' | 'delivered' | 'failed';
  bytes: number;
  /** bytes/s */
  rate: number;
  transport: string | null;
  deliveredAt: string | null;
  error: string | null;
  attempts?: number;
}

/** What an agent is receiving now. */
export interface ReceivingNow {
  deliveryId: string;
  fileName: string;
  bytes: number;
  size: number;
  rate: number;
  transport: string;
}

/** One connected receiver. */
export interface Receiver {
  agentId: string;
  username: string;
  name: string;
  address: string;
  version?: string;
  /** ISO date or epoch ms. */
  since: string | number;
  receiving: ReceivingNow[];
}

/** Send-now result for one recipient. */
export interface SendResult {
  username: string;
  deliveryId: string;
  outcome: string;
  agents?: number;
}

/** Route names by purpose, first one present wins (names may differ between server versions). */
const names = {
  listPending: ['listPending', 'pendingList'],
  addPending: ['addPending', 'pendingAdd'],
  sendPending: ['sendPending', 'pendingSend'],
  listReceivers: ['listReceivers', 'receivers'],
  checkReceiver: ['checkReceiver', 'checkAgent', 'probeReceiver'],
  sendToUser: ['sendToUser', 'sendDirect', 'sendFile'],
} as const;

type Purpose = keyof typeof names;

/** The route name serving `purpose` on this build, or undefined. */
export function routeFor(api: Api, purpose: Purpose): string | undefined {
  return names[purpose].find((n) => api.has(n));
}

/** True when every purpose listed has a route. */
export function hasRoutes(api: Api, ...purposes: Purpose[]): boolean {
  return purposes.every((p) => routeFor(api, p) !== undefined);
}

async function callFor(api: Api, purpose: Purpose, input: Parameters<Api['callAny']>[1]): Promise<unknown> {
  const name = routeFor(api, purpose);
  if (!name) throw new ShoalError(ErrorCode.NOT_FOUND, 'not available on this server yet');
  return api.callAny(name, input);
}

/** The first array found in an answer object (`{ entries: [...] }`, `{ pending: [...] }`…). */
function firstArray<T>(res: unknown): T[] {
  if (Array.isArray(res)) return res as T[];
  if (res && typeof res === 'object') {
    for (const v of Object.values(res)) if (Array.isArray(v)) return v as T[];
  }
  return [];
}

/** A group's pending list. */
export async function listPending(api: Api, group: string, signal?: AbortSignal): Promise<PendingEntry[]> {
  return firstArray<PendingEntry>(await callFor(api, 'listPending', { params: { group }, signal }));
}

/** Adds a catalogue file to a group's pending list. */
export async function addPending(api: Api, group: string, fileId: string): Promise<void> {
  await callFor(api, 'addPending', { params: { group }, body: { fileId } });
}

/** Sends everything pending in a group now; one result per recipient. */
export async function sendPending(api: Api, group: string): Promise<SendResult[]> {
  return firstArray<SendResult>(await callFor(api, 'sendPending', { params: { group } }));
}

/** Receivers online now. */
export async function listReceivers(api: Api, signal?: AbortSignal): Promise<Receiver[]> {
  return firstArray<Receiver>(await callFor(api, 'listReceivers', { signal }));
}

/** Round-trip probe to one receiver; the answer as the server gives it. */
export async function checkReceiver(api: Api, target: string): Promise<unknown> {
  const name = routeFor(api, 'checkReceiver');
  if (!name) throw new ShoalError(ErrorCode.NOT_FOUND, 'not available on this server yet');
  return api.callAny(name, { params: { agent: target, target, username: target, agentId: target } });
}

/** A 1:1 delivery of an already shared or freshly uploaded file to one user. */
export async function sendToUser(api: Api, username: string, body: Record<string, unknown>): Promise<unknown> {
  return callFor(api, 'sendToUser', { params: { username }, body: { username, ...body } });
}
