/**
 * WebSocket messages on `/api/v1/events`, both ways, as zod schemas and discriminated unions on `type`.
 * Agents send `hello` first and then heartbeats and reports; web UIs and CLI watchers send nothing (or
 * heartbeats) and only receive `event`s. Every message is one JSON text frame of at most
 * Limits.wsMessageBytes; anything larger or malformed closes the connection with a WsClose code.
 */
import { z } from 'zod';
import { CatalogueFile, Manifest, Sha256Hex } from './api.ts';
import { Limits } from './limits.ts';

/** Close codes the hub uses (4000–4999 are application codes in RFC 6455). */
export const WsClose = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** A message that is not JSON or does not match a schema. */
  MALFORMED: 4400,
  /** No or a bad bearer token. */
  UNAUTHENTICATED: 4401,
  /** The agent or user lost its right to be connected (user deleted, agent claimed by another user). */
  FORBIDDEN: 4403,
  /** A message over Limits.wsMessageBytes. */
  TOO_LARGE: 4413,
  /** Another connection took over the same agent id. */
  REPLACED: 4409,
} as const;

/** Browsers cannot set headers on a WebSocket: they pass the token as the subprotocol `bearer.<token>`. */
export const wsBearerPrefix = 'bearer.';

const Id = z.string().min(1).max(128);
const ShortText = z.string().max(1000);
const Transport = z.string().max(32);

// ---- agent → coordinator ---------------------------------------------------------------------------------

export const HelloMsg = z.object({
  type: z.literal('hello'),
  /** Stable id of the agent, kept in its local state. */
  agentId: Id,
  name: z.string().min(1).max(128),
  version: z.string().max(64),
  /** Base URL of its piece server (`https://host:port`), null when it serves nothing. */
  listenUrl: z.string().max(512).nullable(),
  /** SHA-256 fingerprint of its piece server's certificate (hex), null with listenUrl null. */
  fingerprint: z.string().max(128).nullable(),
  /** SHA-256 of the files it holds complete and can serve. */
  holdings: z.array(Sha256Hex).max(100_000),
});
export const HeartbeatMsg = z.object({ type: z.literal('heartbeat') });
export const ProgressMsg = z.object({
  type: z.literal('progress'),
  deliveryId: Id,
  /** Bytes verified so far. */
  bytes: z.number().int().nonnegative(),
  /** Current rate, bytes/s. */
  rate: z.number().nonnegative(),
  transport: Transport,
});
export const CompletedMsg = z.object({
  type: z.literal('completed'),
  deliveryId: Id,
  sha256: Sha256Hex,
  transport: Transport,
  /** Free-form figures: bytes per source, passes, bad holders… */
  detail: z.record(z.string(), z.unknown()).optional(),
});
export const FailedMsg = z.object({
  type: z.literal('failed'),
  deliveryId: Id,
  reason: ShortText,
  /** Holders (agent ids or 'coordinator') that served bad pieces. */
  badHolders: z.array(Id).max(1000).optional(),
  /** True when retrying cannot help (a refused file name): the coordinator stops retrying. */
  permanent: z.boolean().optional(),
});
export const PongMsg = z.object({ type: z.literal('pong'), probeId: Id });
export const MulticastStatusMsg = z.object({
  type: z.literal('multicast-status'),
  transferId: Id,
  /** Half-open [start, end) chunk ranges still missing. */
  missing: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])).max(65_536),
  /** Chunks held in part: [chunk, fragment indexes still missing] (the multicast receiver keeps the listed
   * fragments under 40,000 in total); repairing fragments instead of whole chunks keeps repair traffic near
   * the loss rate. */
  partial: z
    .array(
      z.tuple([z.number().int().nonnegative(), z.array(z.number().int().nonnegative().max(4095)).max(4096)]),
    )
    .max(65_536)
    .optional(),
  /** Chunks received so far. */
  received: z.number().int().nonnegative(),
  /** Loss rate over the last pass, 0..1. */
  lossRate: z.number().min(0).max(1),
  /** Of the same datagrams, the fraction dropped because the receiver could not keep up, 0..1. */
  overloadRate: z.number().min(0).max(1).optional(),
});

/** Every message an agent (or a watcher) may send. */
export const ClientMessage = z.discriminatedUnion('type', [
  HelloMsg,
  HeartbeatMsg,
  ProgressMsg,
  CompletedMsg,
  FailedMsg,
  PongMsg,
  MulticastStatusMsg,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type HelloMsg = z.infer<typeof HelloMsg>;

// ---- coordinator → agent / viewer ------------------------------------------------------------------------

/** A place to fetch pieces: `url` null means the coordinator itself (the agent uses its own server URL). */
export const Holder = z.object({
  id: Id,
  url: z.string().max(512).nullable(),
  fingerprint: z.string().max(128).nullable(),
});
export type Holder = z.infer<typeof Holder>;

export const WelcomeMsg = z.object({
  type: z.literal('welcome'),
  user: z.object({ id: z.string(), username: z.string(), isAdmin: z.boolean() }),
  /** How often the coordinator expects a heartbeat, ms. */
  heartbeatMs: z.number().int().positive(),
  /** Ed25519 public key that signs tickets (base64 of the raw 32 bytes or SPKI DER, as /info gives). */
  publicKey: z.string(),
});
export const OfferMsg = z.object({
  type: z.literal('offer'),
  deliveryId: Id,
  /** Group name, or null for a 1:1 send. */
  group: z.string().nullable(),
  /** Who sent it (username). */
  from: z.string(),
  /** The catalogue entry; `group` is "" for a 1:1 send. */
  file: CatalogueFile,
  manifest: Manifest,
  /** Signed ticket for every holder's piece server. */
  ticket: z.string().max(4096),
  holders: z.array(Holder).max(1000),
  /** Set when the file comes by multicast first (a `multicast-start` with this id came just before). */
  transferId: Id.optional(),
});
export const ProbeMsg = z.object({ type: z.literal('probe'), probeId: Id });
export const CancelMsg = z.object({ type: z.literal('cancel'), deliveryId: Id, reason: ShortText });
export const MulticastStartMsg = z.object({
  type: z.literal('multicast-start'),
  transferId: Id,
  deliveryId: Id,
  /** AES-256-GCM key, base64. */
  key: z.string().max(64),
  address: z.string().max(64),
  port: z.number().int().min(1).max(65535),
  manifest: Manifest,
  /** Bytes per sealed chunk. */
  chunkSize: z.number().int().positive(),
});
export const MulticastStatusRequestMsg = z.object({
  type: z.literal('multicast-status-request'),
  transferId: Id,
  pass: z.number().int().nonnegative(),
});
export const ErrorMsg = z.object({ type: z.literal('error'), code: z.string(), message: ShortText });

/** Something a viewer may want to redraw for. `group` null for 1:1 deliveries and presence. */
export const ShoalEvent = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('catalogue'),
    group: z.string(),
    action: z.enum(['shared', 'unshared']),
    fileId: z.string(),
    name: z.string().optional(),
  }),
  z.object({
    kind: z.literal('delivery'),
    group: z.string().nullable(),
    deliveryId: z.string(),
    action: z.enum(['created', 'cancelled', 'sent']),
    fileId: z.string(),
    /** Who created the delivery (username); 1:1 sends are shown to their sender. */
    from: z.string().optional(),
  }),
  z.object({
    kind: z.literal('recipient'),
    group: z.string().nullable(),
    deliveryId: z.string(),
    username: z.string(),
    state: z.enum(['pending', 'receiving', 'delivered', 'failed']),
    bytes: z.number(),
    rate: z.number(),
    transport: z.string().nullable(),
    error: z.string().nullable(),
    /** Who created the delivery (username). */
    from: z.string().optional(),
  }),
  z.object({
    kind: z.literal('presence'),
    group: z.null(),
    agentId: z.string(),
    username: z.string(),
    name: z.string(),
    online: z.boolean(),
  }),
  z.object({
    kind: z.literal('membership'),
    group: z.string(),
    username: z.string(),
    action: z.enum(['added', 'removed', 'left']),
  }),
  z.object({
    kind: z.literal('join-decision'),
    group: z.string(),
    username: z.string(),
    state: z.enum(['pending', 'approved', 'denied']),
  }),
  z.object({ kind: z.literal('group'), group: z.string(), action: z.enum(['created', 'deleted']) }),
]);
export type ShoalEvent = z.infer<typeof ShoalEvent>;
export const EventMsg = z.object({ type: z.literal('event'), event: ShoalEvent });

/** Every message the coordinator may send. */
export const ServerMessage = z.discriminatedUnion('type', [
  WelcomeMsg,
  OfferMsg,
  ProbeMsg,
  CancelMsg,
  EventMsg,
  MulticastStartMsg,
  MulticastStatusRequestMsg,
  ErrorMsg,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type OfferMsg = z.infer<typeof OfferMsg>;

/** Result of decoding one frame: the message, or why it was refused and the close code to use. */
export type Decoded<T> = { ok: true; msg: T } | { ok: false; close: number; reason: string };

function decodeWith<T>(schema: z.ZodType<T>, data: string | Uint8Array): Decoded<T> {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  if (size > Limits.wsMessageBytes)
    return { ok: false, close: WsClose.TOO_LARGE, reason: `message of ${size} bytes over the limit` };
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch {
    return { ok: false, close: WsClose.MALFORMED, reason: 'message is not JSON' };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const type =
      typeof json === 'object' && json !== null && 'type' in json
        ? String((json as { type: unknown }).type).slice(0, 40)
        : '?';
    return {
      ok: false,
      close: WsClose.MALFORMED,
      reason: `malformed ${type} message: ${r.error.issues[0]?.message ?? 'invalid'}`,
    };
  }
  return { ok: true, msg: r.data };
}

/** Decodes a frame an agent or watcher sent (bounded, never throws). */
export function decodeClientMessage(data: string | Uint8Array): Decoded<ClientMessage> {
  return decodeWith(ClientMessage, data);
}

/** Decodes a frame the coordinator sent (bounded, never throws). */
export function decodeServerMessage(data: string | Uint8Array): Decoded<ServerMessage> {
  return decodeWith(ServerMessage, data);
}

/** Encodes a message as one JSON text frame. */
export function encodeMessage(msg: ClientMessage | ServerMessage): string {
  return JSON.stringify(msg);
}
