/** Typed helpers for deliveries and presence: the pending list, send now, receivers, checks. */
import type { PendingEntry, Receiver } from '../../src/protocol/api.ts';
import type { Api } from './api.ts';

export type { PendingEntry, Receiver };

/** A group's pending list (owners and admins). */
export async function listPending(api: Api, group: string, signal?: AbortSignal): Promise<PendingEntry[]> {
  return (await api.call('listPending', { params: { group }, signal })).entries;
}

/** Adds a catalogue file to a group's pending list. */
export async function addPending(api: Api, group: string, fileId: string): Promise<void> {
  await api.call('addPending', { params: { group }, body: { fileId } });
}

/** Sends everything pending in a group now; one result per recipient. */
export async function sendPending(api: Api, group: string) {
  return (await api.call('sendPending', { params: { group } })).results;
}

/** Receivers online now (admins: all; owners: their members; others: their own). */
export async function listReceivers(api: Api, signal?: AbortSignal): Promise<Receiver[]> {
  return (await api.call('listReceivers', { signal })).receivers;
}
