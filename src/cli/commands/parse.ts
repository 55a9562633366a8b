/** Parsers for option values (commander calls them and reports their InvalidArgumentError as a usage error). */
import { InvalidArgumentError } from 'commander';

/** A non-negative integer. */
export function parseIntOption(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** A size in bytes: `1500`, `10k`, `1.5M`, `2GiB` (k/M/G alone are binary, kB/MB/GB decimal). */
export function parseSizeOption(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? sizeUnits[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new InvalidArgumentError('expected a size such as 1500, 10k, 1.5M or 2GiB');
  return Math.round(Number(m[1]) * unit);
}

const durationUnits: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** A point in time, as an ISO string: an ISO date/time, or an age like `30m`, `12h`, `7d`, `2w` (that long ago). */
export function parseSinceOption(value: string, now: number = Date.now()): string {
  const rel = /^(\d+)\s*([mhdw])$/i.exec(value.trim());
  if (rel) return new Date(now - Number(rel[1]) * durationUnits[rel[2].toLowerCase()]).toISOString();
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new InvalidArgumentError('expected a date (2026-01-31, 2026-01-31T12:00Z) or an age (12h, 7d)');
  return new Date(t).toISOString();
}
