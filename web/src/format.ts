/** Human formats for sizes, rates and times. */

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes as "1.5 MiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A rate in bytes/s as "12 MiB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** An ISO date or epoch ms as a local date and time. */
export function formatDate(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '–';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

/** Percent (0–100) of done over total, 0 when total is unknown. */
export function percent(done: number, total: number): number {
  return total > 0 ? Math.min(100, Math.max(0, (done / total) * 100)) : 0;
}

const sizeUnits: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses "1500", "200K", "1.5 MiB", "2g" to bytes; undefined when empty, NaN when unreadable. */
export function parseSize(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (!t) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/.exec(t);
  if (!m) return Number.NaN;
  return Math.round(Number(m[1]) * sizeUnits[m[2]]);
}
