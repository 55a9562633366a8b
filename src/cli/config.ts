/**
 * Client state of the `shoal` command: $SHOAL_HOME/config.json (default ~/.config/shoal), mode 0600 because
 * it holds the session token. It remembers the coordinator URL, its pinned certificate fingerprint, the token
 * and the username, plus the fingerprints of every coordinator ever trusted (so a changed certificate is noticed
 * even after logging in elsewhere).
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';

export const CliConfig = z.object({
  /** Coordinator origin, `https://host:port`. */
  url: z.string().optional(),
  /** Pinned SHA-256 fingerprint of the coordinator's certificate (`AB:CD:…`). */
  fingerprint: z.string().optional(),
  token: z.string().optional(),
  username: z.string().optional(),
  /** ISO time the token expires. */
  expiresAt: z.string().optional(),
  /** Fingerprints trusted so far, by origin. */
  knownHosts: z.record(z.string(), z.string()).default({}),
});
export type CliConfig = z.infer<typeof CliConfig>;

/** The state directory: $SHOAL_HOME, else $XDG_CONFIG_HOME/shoal, else ~/.config/shoal. */
export function configHome(env: Record<string, string | undefined>): string {
  if (env.SHOAL_HOME) return path.resolve(env.SHOAL_HOME);
  if (env.XDG_CONFIG_HOME) return path.join(env.XDG_CONFIG_HOME, 'shoal');
  return path.join(env.HOME || homedir(), '.config', 'shoal');
}

/** Path of config.json inside `home`. */
export function configPath(home: string): string {
  return path.join(home, 'config.json');
}

/** Reads the config; an absent file is an empty config, a corrupt one an error naming the file. */
export async function loadConfig(home: string): Promise<CliConfig> {
  const file = configPath(home);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return CliConfig.parse({});
    throw err;
  }
  try {
    return CliConfig.parse(JSON.parse(text));
  } catch {
    throw new ShoalError(ErrorCode.BAD_REQUEST, `${file} is not a valid shoal config; fix or delete it`);
  }
}

/** Writes the config atomically with mode 0600 (its directory 0700). */
export async function saveConfig(home: string, config: CliConfig): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const file = configPath(home);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  // writeFile's mode only applies when creating; chmod covers a leftover temp file.
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** The origin (`https://host:port`) of a coordinator URL given by a user; refuses anything but https. */
export function normalizeServerUrl(input: string): string {
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//i.test(input) ? input : `https://${input}`);
  } catch {
    throw new ShoalError(ErrorCode.BAD_REQUEST, `not a URL: ${input}`);
  }
  if (u.protocol !== 'https:')
    throw new ShoalError(ErrorCode.BAD_REQUEST, `the coordinator URL must use https: ${input}`);
  return u.origin;
}
