/**
 * Rows → API objects (src/protocol/api.ts shapes). Ids become names, epoch ms become ISO dates, and
 * secrets (password hashes) never leave this layer.
 */
import type {
  AuditEntry,
  CatalogueFile,
  Group,
  JoinRequest,
  Manifest,
  Member,
  User,
} from '../protocol/api.ts';
import type {
  AuditRow,
  BlobRow,
  FileRow,
  GroupRow,
  JoinRequestRow,
  MembershipRow,
  Store,
  UserRow,
} from '../store/store.ts';

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** Caches user-id → username lookups for one request. */
export function createNameCache(store: Store): (userId: string | null) => Promise<string | null> {
  const cache = new Map<string, string>();
  return async (userId) => {
    if (userId === null) return null;
    const hit = cache.get(userId);
    if (hit !== undefined) return hit;
    const user = await store.getUserById(userId);
    const name = user?.username ?? '(deleted)';
    cache.set(userId, name);
    return name;
  };
}

export function userView(u: UserRow): User {
  return { id: u.id, username: u.username, isAdmin: u.isAdmin, createdAt: iso(u.createdAt) };
}

/** A group as seen by `viewer` (myRole / myRequest are the viewer's). */
export async function groupView(
  store: Store,
  g: GroupRow,
  viewer: UserRow | undefined,
  names = createNameCache(store),
): Promise<Group> {
  const [memberCount, membership, request, createdBy] = await Promise.all([
    store.countMembers(g.id),
    viewer ? store.getMembership(g.id, viewer.id) : undefined,
    viewer ? store.getJoinRequest(g.id, viewer.id) : undefined,
    names(g.createdBy),
  ]);
  return {
    id: g.id,
    name: g.name,
    multicastAddress: g.multicastAddress,
    multicastPort: g.multicastPort,
    createdBy: createdBy ?? '(deleted)',
    createdAt: iso(g.createdAt),
    memberCount,
    myRole: membership?.role ?? null,
    myRequest: request?.state ?? null,
  };
}

export function memberView(m: MembershipRow & { username: string }): Member {
  return { username: m.username, role: m.role, joinedAt: iso(m.joinedAt) };
}

export async function joinRequestView(
  store: Store,
  r: JoinRequestRow,
  names = createNameCache(store),
  groupName?: string,
): Promise<JoinRequest> {
  const group = groupName ?? (await store.getGroupById(r.groupId))?.name ?? '(deleted)';
  return {
    group,
    username: (await names(r.userId)) ?? '(deleted)',
    state: r.state,
    createdAt: iso(r.createdAt),
    decidedBy: await names(r.decidedBy),
    decidedAt: isoOrNull(r.decidedAt),
  };
}

export async function fileView(
  f: FileRow,
  blob: BlobRow | undefined,
  groupName: string,
  names: (id: string | null) => Promise<string | null>,
): Promise<CatalogueFile> {
  const pieceSize = blob?.pieceSize ?? 0;
  return {
    id: f.id,
    group: groupName,
    name: f.name,
    size: f.size,
    type: f.type,
    sha256: f.sha256,
    pieceSize,
    pieceCount: blob?.pieces.length ?? 0,
    sharedBy: (await names(f.sharedBy)) ?? '(deleted)',
    sharedAt: iso(f.sharedAt),
  };
}

export function manifestView(f: FileRow, blob: BlobRow): Manifest {
  return { name: f.name, size: f.size, sha256: f.sha256, pieceSize: blob.pieceSize, pieces: blob.pieces };
}

export async function auditView(
  a: AuditRow,
  names: (id: string | null) => Promise<string | null>,
): Promise<AuditEntry> {
  return {
    id: a.id,
    at: iso(a.at),
    actor: await names(a.actorId),
    action: a.action,
    group: a.groupName,
    target: a.target,
    detail: a.detail,
  };
}
