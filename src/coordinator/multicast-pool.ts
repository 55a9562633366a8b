/**
 * Multicast addresses for groups: validation of a given address and picking a free one from the
 * administratively scoped pool 239.192.0.0/14 (RFC 2365 organization-local scope).
 */
import { ErrorCode, ShoalError } from '../protocol/errors.ts';

/** Default UDP port of a group's multicast traffic. */
export const defaultMulticastPort = 7700;

const poolBase = (239 << 24) | (192 << 16); // 239.192.0.0
const poolSize = 1 << 18; // /14

function toInt(address: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o, i) => o > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith('0')))) return undefined;
  return ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
}

function toDotted(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Checks a user-given IPv4 multicast address (224.0.0.0/4, minus the 224.0.0.0/24 link-local control block)
 * and returns its canonical dotted form; throws INVALID_MULTICAST_ADDRESS otherwise.
 */
export function parseMulticastAddress(address: string): string {
  const n = toInt(address.trim());
  if (n === undefined)
    throw new ShoalError(ErrorCode.INVALID_MULTICAST_ADDRESS, `not an IPv4 address: ${address}`);
  if (n >>> 28 !== 0xe)
    throw new ShoalError(
      ErrorCode.INVALID_MULTICAST_ADDRESS,
      `not a multicast address (224.0.0.0/4): ${address}`,
    );
  if (n >>> 8 === 0xe00000) {
    throw new ShoalError(
      ErrorCode.INVALID_MULTICAST_ADDRESS,
      `224.0.0.0/24 is reserved for local network control: ${address}`,
    );
  }
  return toDotted(n);
}

/** Picks the lowest free address of the pool (skipping .0 and .255 host parts); throws MULTICAST_POOL_EXHAUSTED. */
export function pickMulticastAddress(used: Iterable<string>): string {
  const taken = new Set(used);
  for (let i = 1; i < poolSize; i++) {
    const low = i & 255;
    if (low === 0 || low === 255) continue;
    const candidate = toDotted((poolBase + i) >>> 0);
    if (!taken.has(candidate)) return candidate;
  }
  throw new ShoalError(
    ErrorCode.MULTICAST_POOL_EXHAUSTED,
    'no free multicast address left in 239.192.0.0/14',
  );
}
