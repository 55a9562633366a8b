/**
 * The REST contract of the coordinator under /api/v1: entity schemas and a route table. The coordinator
 * registers a handler per route key, the typed client (src/client) calls routes by key, and the
 * authorization test walks the table. Schemas are zod 4; bodies are JSON unless `raw` says otherwise.
 */
import { z } from 'zod';
import { Limits } from './limits.ts';

const nameRe = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A username or group name: letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const Name = z
  .string()
  .min(Limits.nameMinChars)
  .max(Limits.nameMaxChars)
  .regex(nameRe, 'letters, digits, ".", "_" and "-" only, starting with a letter or digit');

export const Password = z.string().min(Limits.passwordMinChars).max(Limits.passwordMaxChars);
export const IsoDate = z.string();
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

export const User = z.object({
  id: z.string(),
  username: z.string(),
  isAdmin: z.boolean(),
  createdAt: IsoDate,
});
export type User = z.infer<typeof User>;

export const GroupRole = z.enum(['owner', 'member']);
export type GroupRole = z.infer<typeof GroupRole>;

export const Group = z.object({
  id: z.string(),
  name: z.string(),
  multicastAddress: z.string(),
  multicastPort: z.number().int(),
  createdBy: z.string(),
  createdAt: IsoDate,
  memberCount: z.number().int(),
  /** The caller's role in the group, or null when not a member. */
  myRole: GroupRole.nullable(),
  /** The state of the caller's latest join request, or null. */
  myRequest: z.enum(['pending', 'approved', 'denied']).nullable(),
});
export type Group = z.infer<typeof Group>;

export const Member = z.object({ username: z.string(), role: GroupRole, joinedAt: IsoDate });
export type Member = z.infer<typeof Member>;

export const JoinRequestState = z.enum(['pending', 'approved', 'denied']);
export const JoinRequest = z.object({
  group: z.string(),
  username: z.string(),
  state: JoinRequestState,
  createdAt: IsoDate,
  decidedBy: z.string().nullable(),
  decidedAt: IsoDate.nullable(),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const CatalogueFile = z.object({
  id: z.string(),
  group: z.string(),
  name: z.string(),
  size: z.number().int(),
  /** Lower-case extension without the dot, or '' when the name has none. */
  type: z.string(),
  sha256: Sha256Hex,
  pieceSize: z.number().int(),
  pieceCount: z.number().int(),
  sharedBy: z.string(),
  sharedAt: IsoDate,
});
export type CatalogueFile = z.infer<typeof CatalogueFile>;

export const Manifest = z.object({
  name: z.string(),
  size: z.number().int().nonnegative(),
  sha256: Sha256Hex,
  pieceSize: z.number().int().positive(),
  pieces: z.array(Sha256Hex).max(Limits.maxPieces),
});
export type Manifest = z.infer<typeof Manifest>;

export const AuditEntry = z.object({
  id: z.string(),
  at: IsoDate,
  actor: z.string().nullable(),
  action: z.string(),
  group: z.string().nullable(),
  target: z.string().nullable(),
  detail: z.string().nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export const FileSort = z.enum(['name', 'size', 'date']);
export const FileQuery = z.object({
  search: z.string().max(200).optional(),
  type: z.string().max(32).optional(),
  sharer: z.string().max(64).optional(),
  since: z.string().max(64).optional(),
  minSize: z.coerce.number().int().nonnegative().optional(),
  maxSize: z.coerce.number().int().nonnegative().optional(),
  sort: FileSort.optional(),
});
export type FileQuery = z.infer<typeof FileQuery>;

/** Who may call a route. `member` and `owner` are relative to the `:group` path parameter. */
export type Access = 'anonymous' | 'user' | 'member' | 'owner' | 'admin';

export interface RouteDef {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under /api/v1, Fastify style (`/groups/:group`). */
  path: string;
  access: Access;
  summary: string;
  params?: z.ZodType;
  query?: z.ZodType;
  /** JSON body schema; absent for no body. */
  body?: z.ZodType;
  /** True when the body is a raw byte stream (uploads). */
  raw?: boolean;
  /** Response schema for 200 JSON answers; absent for 204 or byte streams. */
  response?: z.ZodType;
  /** True when the answer is a byte stream (downloads). */
  stream?: boolean;
}

const GroupParam = z.object({ group: z.string() });
const GroupUserParam = z.object({ group: z.string(), username: z.string() });
const GroupFileParam = z.object({ group: z.string(), fileId: z.string() });
const UserParam = z.object({ username: z.string() });

// ---- presence and deliveries (agents) ----------------------------------------------------------------

export const DeliveryState = z.enum(['pending', 'receiving', 'delivered', 'failed']);
/** One file × one recipient of a delivery. Rates in bytes/s. */
export const PendingEntry = z.object({
  deliveryId: z.string(),
  fileId: z.string(),
  fileName: z.string(),
  size: z.number(),
  username: z.string(),
  state: DeliveryState,
  bytes: z.number(),
  rate: z.number(),
  transport: z.string().nullable(),
  deliveredAt: IsoDate.nullable(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  /** While a multicast transfer runs for this entry: the receiver's last reported loss (0..1) and passes answered. */
  loss: z.number().nullable().optional(),
  passes: z.number().int().nullable().optional(),
  /** Once delivered: how the bytes came (see DeliveryRecord). */
  record: z
    .object({
      /** multicast: all by multicast; repair: multicast then the swarm for the rest; swarm: no multicast. */
      how: z.string(),
      /** Bytes verified from multicast datagrams. */
      multicastBytes: z.number(),
      /** Bytes fetched from holders (coordinator and peers) over HTTPS. */
      fetchedBytes: z.number(),
      transferId: z.string().nullable(),
      /** Multicast passes the transfer took (null without one). */
      passes: z.number().int().nullable(),
    })
    .nullable()
    .optional(),
});
export type PendingEntry = z.infer<typeof PendingEntry>;
/** A connected agent. */
export const Receiver = z.object({
  agentId: z.string(),
  username: z.string(),
  name: z.string(),
  version: z.string(),
  address: z.string(),
  since: IsoDate,
  lastSeen: IsoDate,
  listenUrl: z.string().nullable(),
  receiving: z.array(
    z.object({ deliveryId: z.string(), fileName: z.string(), bytes: z.number(), size: z.number(), rate: z.number(), transport: z.string() }),
  ),
});
export type Receiver = z.infer<typeof Receiver>;
/** Where to fetch pieces; `url` null means the coordinator itself. */
export const PieceHolder = z.object({ id: z.string(), url: z.string().nullable(), fingerprint: z.string().nullable() });
export const SendResult = z.object({
  username: z.string(),
  deliveryId: z.string(),
  outcome: z.enum(['offered', 'offline', 'delivered', 'skipped']),
  agents: z.number().int(),
});
export const DeliveryInfo = z.object({
  id: z.string(),
  fileId: z.string(),
  group: z.string().nullable(),
  createdBy: z.string(),
  createdAt: IsoDate,
  cancelled: z.boolean(),
  recipients: z.array(PendingEntry),
});
export type DeliveryInfo = z.infer<typeof DeliveryInfo>;
const GroupDeliveryParam = z.object({ group: z.string(), deliveryId: z.string() });
/** One receiver of a multicast transfer. */
export const TransferReceiver = z.object({
  agentId: z.string(),
  username: z.string(),
  name: z.string(),
  /** joining, receiving, complete (all by multicast) or repair (the swarm finishes it). */
  state: z.string(),
  /** Bytes held per its last status report. */
  bytes: z.number(),
  chunks: z.number().int(),
  /** Loss rate of the last pass it reported, 0..1. */
  loss: z.number(),
  /** Passes it answered. */
  passes: z.number().int(),
  /** Its delivery state and record (from the pending list), when known. */
  delivery: z.string().nullable(),
  rate: z.number(),
  transport: z.string().nullable(),
  multicastBytes: z.number().nullable(),
  fetchedBytes: z.number().nullable(),
});
/** A running or recently finished multicast transfer. Rates in bits/s. */
export const MulticastTransfer = z.object({
  transferId: z.string(),
  deliveryId: z.string(),
  group: z.string(),
  fileName: z.string(),
  size: z.number(),
  chunks: z.number().int(),
  rateBps: z.number(),
  minRateBps: z.number(),
  currentRateBps: z.number().nullable(),
  passes: z.number().int(),
  maxPasses: z.number().int(),
  /** joining, sending, done or failed. */
  state: z.string(),
  startedAt: IsoDate,
  finishedAt: IsoDate.nullable(),
  wireBytes: z.number().nullable(),
  receivers: z.array(TransferReceiver),
});
export type MulticastTransfer = z.infer<typeof MulticastTransfer>;

/** Every REST route of the coordinator. */
export const routes = {
  register: {
    method: 'POST', path: '/auth/register', access: 'anonymous', summary: 'Create an account',
    body: z.strictObject({ username: Name, password: Password }),
    response: z.object({ user: User }),
  },
  login: {
    method: 'POST', path: '/auth/login', access: 'anonymous', summary: 'Log in and receive a bearer token',
    body: z.strictObject({ username: z.string().max(Limits.nameMaxChars), password: z.string().max(Limits.passwordMaxChars) }),
    response: z.object({ token: z.string(), expiresAt: IsoDate, user: User }),
  },
  logout: { method: 'POST', path: '/auth/logout', access: 'user', summary: 'End this session' },
  whoami: {
    method: 'GET', path: '/auth/me', access: 'user', summary: 'The calling user',
    response: z.object({ user: User }),
  },
  serverInfo: {
    method: 'GET', path: '/info', access: 'anonymous', summary: 'Server version and settings',
    response: z.object({ version: z.string(), registration: z.boolean(), publicKey: z.string() }),
  },

  listUsers: {
    method: 'GET', path: '/users', access: 'admin', summary: 'List users',
    response: z.object({ users: z.array(User) }),
  },
  createUser: {
    method: 'POST', path: '/users', access: 'admin', summary: 'Create a user',
    body: z.strictObject({ username: Name, password: Password, isAdmin: z.boolean().optional() }),
    response: z.object({ user: User }),
  },
  updateUser: {
    method: 'PATCH', path: '/users/:username', access: 'admin', summary: 'Change a user (make admin)',
    params: UserParam, body: z.strictObject({ isAdmin: z.boolean() }),
    response: z.object({ user: User }),
  },
  deleteUser: {
    method: 'DELETE', path: '/users/:username', access: 'admin', summary: 'Delete a user', params: UserParam,
  },
  userGroups: {
    method: 'GET', path: '/users/:username/groups', access: 'admin', summary: "A user's groups",
    params: UserParam, response: z.object({ groups: z.array(Group) }),
  },

  listGroups: {
    method: 'GET', path: '/groups', access: 'user', summary: 'List all groups',
    response: z.object({ groups: z.array(Group) }),
  },
  myGroups: {
    method: 'GET', path: '/me/groups', access: 'user', summary: 'Groups I belong to',
    response: z.object({ groups: z.array(Group) }),
  },
  myRequests: {
    method: 'GET', path: '/me/requests', access: 'user', summary: 'My join requests',
    response: z.object({ requests: z.array(JoinRequest) }),
  },
  createGroup: {
    method: 'POST', path: '/groups', access: 'admin', summary: 'Create a group',
    body: z.strictObject({
      name: Name,
      multicastAddress: z.string().max(64).optional(),
      multicastPort: z.number().int().min(1024).max(65535).optional(),
    }),
    response: z.object({ group: Group }),
  },
  getGroup: {
    method: 'GET', path: '/groups/:group', access: 'user', summary: 'One group', params: GroupParam,
    response: z.object({ group: Group }),
  },
  deleteGroup: {
    method: 'DELETE', path: '/groups/:group', access: 'owner', summary: 'Delete a group', params: GroupParam,
  },
  listMembers: {
    method: 'GET', path: '/groups/:group/members', access: 'member', summary: "A group's members",
    params: GroupParam, response: z.object({ members: z.array(Member) }),
  },
  addMember: {
    method: 'PUT', path: '/groups/:group/members/:username', access: 'owner', summary: 'Add a member',
    params: GroupUserParam, body: z.strictObject({ role: GroupRole.optional() }).optional(),
    response: z.object({ member: Member }),
  },
  removeMember: {
    method: 'DELETE', path: '/groups/:group/members/:username', access: 'owner', summary: 'Remove a member',
    params: GroupUserParam,
  },
  joinGroup: {
    method: 'POST', path: '/groups/:group/join', access: 'user', summary: 'Ask to join a group',
    params: GroupParam, response: z.object({ request: JoinRequest }),
  },
  leaveGroup: {
    method: 'POST', path: '/groups/:group/leave', access: 'member', summary: 'Leave a group', params: GroupParam,
  },
  listRequests: {
    method: 'GET', path: '/requests', access: 'user',
    summary: 'Pending join requests of every group I own (all groups for an admin)',
    query: z.object({ group: z.string().optional() }),
    response: z.object({ requests: z.array(JoinRequest) }),
  },
  approveRequest: {
    method: 'POST', path: '/groups/:group/requests/:username/approve', access: 'owner',
    summary: 'Approve a join request', params: GroupUserParam, response: z.object({ request: JoinRequest }),
  },
  denyRequest: {
    method: 'POST', path: '/groups/:group/requests/:username/deny', access: 'owner',
    summary: 'Deny a join request', params: GroupUserParam, response: z.object({ request: JoinRequest }),
  },

  shareFile: {
    method: 'POST', path: '/groups/:group/files', access: 'member',
    summary: 'Share a file: the body is its bytes (application/octet-stream)',
    params: GroupParam, query: z.object({ name: z.string() }), raw: true,
    response: z.object({ file: CatalogueFile }),
  },
  listFiles: {
    method: 'GET', path: '/groups/:group/files', access: 'member', summary: "Search a group's catalogue",
    params: GroupParam, query: FileQuery, response: z.object({ files: z.array(CatalogueFile) }),
  },
  getFile: {
    method: 'GET', path: '/groups/:group/files/:fileId', access: 'member', summary: 'One file and its manifest',
    params: GroupFileParam, response: z.object({ file: CatalogueFile, manifest: Manifest }),
  },
  downloadFile: {
    method: 'GET', path: '/groups/:group/files/:fileId/content', access: 'member',
    summary: "A file's bytes (Range allowed)", params: GroupFileParam, stream: true,
  },
  unshareFile: {
    method: 'DELETE', path: '/groups/:group/files/:fileId', access: 'member',
    summary: 'Stop sharing a file (its sharer, an owner or an admin)', params: GroupFileParam,
  },

  audit: {
    method: 'GET', path: '/audit', access: 'user', summary: 'Audit log (admin; owners for their groups)',
    query: z.object({ group: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    response: z.object({ entries: z.array(AuditEntry) }),
  },

  listReceivers: {
    method: 'GET', path: '/receivers', access: 'user',
    summary: 'Agents connected now (admins: all; owners: their group members; others: their own)',
    query: z.object({ group: z.string().optional() }), response: z.object({ receivers: z.array(Receiver) }),
  },
  checkReceiver: {
    method: 'POST', path: '/receivers/:agentId/check', access: 'user',
    summary: 'Round-trip probe to an agent (504 NOT_ANSWERING after the timeout)',
    params: z.object({ agentId: z.string() }), response: z.object({ agentId: z.string(), rttMs: z.number() }),
  },
  listPending: {
    method: 'GET', path: '/groups/:group/pending', access: 'owner', summary: "A group's pending list: each file × member",
    params: GroupParam, response: z.object({ entries: z.array(PendingEntry) }),
  },
  addPending: {
    method: 'POST', path: '/groups/:group/pending', access: 'owner',
    summary: "Add a catalogue file to a group's pending list (offered at once to members online)",
    params: GroupParam, body: z.strictObject({ fileId: z.string().max(128) }), response: z.object({ delivery: DeliveryInfo }),
  },
  sendPending: {
    method: 'POST', path: '/groups/:group/pending/send', access: 'owner',
    summary: 'Offer every undelivered pending file now to every online member',
    params: GroupParam, response: z.object({ results: z.array(SendResult) }),
  },
  cancelPending: {
    method: 'DELETE', path: '/groups/:group/pending/:deliveryId', access: 'owner',
    summary: 'Remove a file from the pending list (receivers are told to stop)', params: GroupDeliveryParam,
  },
  sendDirect: {
    method: 'POST', path: '/direct', access: 'user',
    summary: 'Send a file to one user (1:1): the body is its bytes (application/octet-stream)',
    query: z.object({ to: z.string(), name: z.string() }), raw: true,
    response: z.object({ delivery: DeliveryInfo, file: CatalogueFile }),
  },
  getDelivery: {
    method: 'GET', path: '/deliveries/:deliveryId', access: 'user',
    summary: 'A delivery and its recipients (its creator, a recipient, a group owner or an admin)',
    params: z.object({ deliveryId: z.string() }), response: z.object({ delivery: DeliveryInfo }),
  },
  fileHolders: {
    method: 'GET', path: '/files/:fileId/holders', access: 'user',
    summary: 'A piece ticket and who holds a file (members of its group, or the 1:1 recipient)',
    params: z.object({ fileId: z.string() }),
    response: z.object({ ticket: z.string(), holders: z.array(PieceHolder), manifest: Manifest, file: CatalogueFile }),
  },
  pushFile: {
    method: 'POST', path: '/groups/:group/push', access: 'owner',
    summary: 'Deliver a catalogue file now to every online member (multicast when several), with a rate ceiling/floor',
    params: GroupParam,
    body: z.strictObject({
      fileId: z.string().max(128),
      /** Rate ceiling of the multicast sender, Mbit/s (default the server's). */
      rateMbit: z.number().positive().max(100_000).optional(),
      /** Rate floor of the multicast sender, Mbit/s (default ceiling / 8). */
      minRateMbit: z.number().positive().max(100_000).optional(),
    }),
    response: z.object({ delivery: DeliveryInfo, results: z.array(SendResult), transferId: z.string().nullable() }),
  },
  listTransfers: {
    method: 'GET', path: '/transfers', access: 'user',
    summary: 'Running and recently finished multicast transfers, per receiver (owners: their groups; admins: all)',
    query: z.object({ group: z.string().optional() }), response: z.object({ transfers: z.array(MulticastTransfer) }),
  },
} as const satisfies Record<string, RouteDef>;

export type Routes = typeof routes;
export type RouteName = keyof Routes;
