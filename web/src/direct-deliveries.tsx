/**
 * 1:1 deliveries this browser session knows about. The API has no route listing a user's direct deliveries
 * (GET /deliveries/:id reads one), so the UI remembers the ids it sees: sends made from the send page, and
 * 1:1 deliveries announced over the live socket while signed in (sent by or to this user). They are kept per
 * user in sessionStorage, like the session itself, so the dashboard can list them among recent deliveries.
 */
import { useLiveEvents } from './live.tsx';
import { useSession } from './session.tsx';

/** Most ids remembered per user. */
const maxRemembered = 50;
const keyFor = (username: string) => `shoal.direct.${username}`;

/** Ids of the 1:1 deliveries remembered for `username`, newest first. */
export function knownDirectDeliveries(username: string): string[] {
  try {
    const raw = sessionStorage.getItem(keyFor(username));
    const ids: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string').slice(0, maxRemembered) : [];
  } catch {
    return [];
  }
}

/** Remembers a 1:1 delivery for `username`; returns true when it was new. */
export function rememberDirectDelivery(username: string, deliveryId: string): boolean {
  const ids = knownDirectDeliveries(username);
  if (ids.includes(deliveryId)) return false;
  try {
    sessionStorage.setItem(keyFor(username), JSON.stringify([deliveryId, ...ids].slice(0, maxRemembered)));
  } catch {
    // Storage full or disabled: the dashboard just will not list it.
  }
  return true;
}

/** Mounted once in the signed-in shell: remembers every 1:1 delivery the live socket mentions. */
export function DirectDeliveryTracker() {
  const { user } = useSession();
  useLiveEvents((e) => {
    if (!user || (e.kind !== 'delivery' && e.kind !== 'recipient') || e.group !== null) return;
    rememberDirectDelivery(user.username, e.deliveryId);
  });
  return null;
}
