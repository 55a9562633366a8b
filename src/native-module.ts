/**
 * The optional native modules (build/<name>.node, built at install by scripts/build-native.mjs from native/):
 * loaded here, once per process, or null where one is not built, does not load or is switched off, and the
 * caller uses its JavaScript fallback. build/ is looked for from this file's directory upwards, so it is found
 * from src/ and from a bundle under build/ alike (bench/multicast/run.ts bundles the bed's processes).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const loaded = new Map<string, unknown>();

/** build/<name>.node, or null; `off` (an environment switch, read at the first call) keeps it unloaded. */
export function loadNativeModule<T>(name: string, off = false): T | null {
  if (!loaded.has(name)) loaded.set(name, off ? null : find(name));
  return loaded.get(name) as T | null;
}

function find(name: string): unknown {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = dirname(dir)) {
    const path = join(dir, 'build', `${name}.node`);
    if (!existsSync(path)) continue;
    try {
      return createRequire(import.meta.url)(path);
    } catch {
      return null;
    }
  }
  return null;
}
