/**
 * The agent's own memory, a small SQLite file under its state directory (better-sqlite3, WAL): its stable
 * id, the ticket public key last seen, the deliveries it is working on (and completions not yet reported
 * because the coordinator was away), and the files it holds and serves. Synchronous on purpose: every call
 * is a few microseconds, and a write returns only once it is in the WAL.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Manifest } from '../protocol/api.ts';
import type { OfferMsg } from '../protocol/events.ts';

/** A delivery the agent took on. */
export interface AgentDelivery {
  deliveryId: string;
  offer: OfferMsg;
  /** receiving → done (finalPath set) → reported. */
  state: 'receiving' | 'done' | 'failed';
  finalPath: string | null;
  /** JSON figures sent with the completion report. */
  detail: Record<string, unknown> | null;
  reported: boolean;
  updatedAt: number;
}

/** A complete file the agent serves. */
export interface HeldFile {
  sha256: string;
  path: string;
  manifest: Manifest;
}

export interface AgentState {
  readonly agentId: string;
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  getDelivery(deliveryId: string): AgentDelivery | undefined;
  putDelivery(d: AgentDelivery): void;
  deleteDelivery(deliveryId: string): void;
  /** Completions not yet acknowledged by sending them over a live socket. */
  unreported(): AgentDelivery[];
  markReported(deliveryId: string): void;
  held(): HeldFile[];
  getHeld(sha256: string): HeldFile | undefined;
  putHeld(h: HeldFile): void;
  deleteHeld(sha256: string): void;
  close(): void;
}

/** Opens (creating when needed) `<stateDir>/agent.db`. */
export function openAgentState(stateDir: string): AgentState {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(stateDir, 'agent.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS deliveries (
      delivery_id TEXT PRIMARY KEY, offer TEXT NOT NULL, state TEXT NOT NULL, final_path TEXT,
      detail TEXT, reported INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS held (sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, manifest TEXT NOT NULL);
  `);
  const getMetaQ = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const setMetaQ = db.prepare(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  );
  type Row = {
    delivery_id: string;
    offer: string;
    state: string;
    final_path: string | null;
    detail: string | null;
    reported: number;
    updated_at: number;
  };
  const getDeliveryQ = db.prepare<[string], Row>('SELECT * FROM deliveries WHERE delivery_id = ?');
  const putDeliveryQ = db.prepare(
    `INSERT INTO deliveries (delivery_id, offer, state, final_path, detail, reported, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(delivery_id) DO UPDATE SET offer = excluded.offer, state = excluded.state, final_path = excluded.final_path,
       detail = excluded.detail, reported = excluded.reported, updated_at = excluded.updated_at`,
  );
  const deleteDeliveryQ = db.prepare('DELETE FROM deliveries WHERE delivery_id = ?');
  const unreportedQ = db.prepare<[], Row>("SELECT * FROM deliveries WHERE state = 'done' AND reported = 0");
  const markReportedQ = db.prepare('UPDATE deliveries SET reported = 1 WHERE delivery_id = ?');
  type HeldRow = { sha256: string; path: string; manifest: string };
  const heldQ = db.prepare<[], HeldRow>('SELECT * FROM held');
  const getHeldQ = db.prepare<[string], HeldRow>('SELECT * FROM held WHERE sha256 = ?');
  const putHeldQ = db.prepare(
    'INSERT INTO held (sha256, path, manifest) VALUES (?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET path = excluded.path, manifest = excluded.manifest',
  );
  const deleteHeldQ = db.prepare('DELETE FROM held WHERE sha256 = ?');

  const toDelivery = (r: Row): AgentDelivery => ({
    deliveryId: r.delivery_id,
    offer: JSON.parse(r.offer) as OfferMsg,
    state: r.state as AgentDelivery['state'],
    finalPath: r.final_path,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
    reported: r.reported === 1,
    updatedAt: r.updated_at,
  });
  const toHeld = (r: HeldRow): HeldFile => ({
    sha256: r.sha256,
    path: r.path,
    manifest: JSON.parse(r.manifest) as Manifest,
  });

  let agentId = getMetaQ.get('agentId')?.value;
  if (!agentId) {
    agentId = randomUUID();
    setMetaQ.run('agentId', agentId);
  }

  return {
    agentId,
    getMeta: (key) => getMetaQ.get(key)?.value,
    setMeta: (key, value) => void setMetaQ.run(key, value),
    getDelivery(id) {
      const r = getDeliveryQ.get(id);
      return r ? toDelivery(r) : undefined;
    },
    putDelivery(d) {
      putDeliveryQ.run(
        d.deliveryId,
        JSON.stringify(d.offer),
        d.state,
        d.finalPath,
        d.detail ? JSON.stringify(d.detail) : null,
        d.reported ? 1 : 0,
        d.updatedAt,
      );
    },
    deleteDelivery: (id) => void deleteDeliveryQ.run(id),
    unreported: () => unreportedQ.all().map(toDelivery),
    markReported: (id) => void markReportedQ.run(id),
    held: () => heldQ.all().map(toHeld),
    getHeld(sha256) {
      const r = getHeldQ.get(sha256);
      return r ? toHeld(r) : undefined;
    },
    putHeld: (h) => void putHeldQ.run(h.sha256, h.path, JSON.stringify(h.manifest)),
    deleteHeld: (sha256) => void deleteHeldQ.run(sha256),
    close: () => db.close(),
  };
}
