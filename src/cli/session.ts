/**
 * The CLI's connection to its coordinator: reads config.json, builds a typed client whose fetch pins the
 * saved certificate fingerprint, and implements trust on first use for `login` and `register`.
 */
import { createApiClient, type ApiClient } from '../client/api-client.ts';
import {
  createNodeFetch,
  formatFingerprint,
  probeFingerprint,
  sameFingerprint,
} from '../client/node-transport.ts';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import { configHome, loadConfig, normalizeServerUrl, saveConfig, type CliConfig } from './config.ts';
import type { CliIo, Output } from './output.ts';

/** A logged-in (or at least configured) client; `close()` frees its connections. */
export interface Session {
  api: ApiClient;
  config: CliConfig;
  home: string;
  url: string;
  fingerprint: string | undefined;
  save(config: CliConfig): Promise<void>;
  close(): Promise<void>;
}

/** A client for `url` pinned to `fingerprint`. */
export function connect(
  url: string,
  fingerprint: string | undefined,
  token?: string,
): { api: ApiClient; close(): Promise<void> } {
  const fetch = createNodeFetch({ fingerprint });
  return { api: createApiClient({ baseUrl: url, token, fetch }), close: () => fetch.close() };
}

/** Opens the session saved in config.json; without a saved login, fails with UNAUTHENTICATED and a hint. */
export async function openSession(io: CliIo, opts: { requireToken?: boolean } = {}): Promise<Session> {
  const home = configHome(io.env);
  const config = await loadConfig(home);
  if (!config.url || (opts.requireToken !== false && !config.token)) {
    throw new ShoalError(ErrorCode.UNAUTHENTICATED, 'not logged in: run `shoal login URL --user NAME` first');
  }
  const fingerprint = config.fingerprint ?? config.knownHosts[config.url];
  const { api, close } = connect(config.url, fingerprint, config.token);
  return {
    api,
    config,
    home,
    url: config.url,
    fingerprint,
    save: (next) => saveConfig(home, next),
    close,
  };
}

/** Saves `fingerprint` as the trusted one for `url` (a failed login afterwards does not undo the trust). */
async function remember(home: string, config: CliConfig, url: string, fingerprint: string): Promise<void> {
  config.knownHosts[url] = fingerprint;
  // The active session's pin follows when it is for the same coordinator.
  if (config.url === url) config.fingerprint = fingerprint;
  await saveConfig(home, config);
}

/** How to re-trust a coordinator whose certificate changed on purpose. */
export function retrustHint(url: string, fingerprint?: string): string {
  return `if the coordinator's certificate was replaced on purpose, check the new fingerprint with its operator and run: shoal login ${url} --user NAME --fingerprint ${fingerprint ?? 'NEW_FINGERPRINT'}`;
}

/**
 * Decides which fingerprint to pin for `url`: the explicit one (checked against what the server presents), the
 * one trusted before (a different certificate now is refused loudly), or, on first contact, the one the server
 * presents (trust on first use, shown to the user). Returns the origin and the fingerprint to save on success.
 */
export async function trustServer(
  out: Output,
  home: string,
  config: CliConfig,
  rawUrl: string,
  explicit: string | undefined,
  signal?: AbortSignal,
): Promise<{ url: string; fingerprint: string }> {
  const url = normalizeServerUrl(rawUrl);
  const known = config.knownHosts[url];
  const pinned = explicit ? formatFingerprint(explicit) : undefined;
  const probe = await probeFingerprint(url, { signal });
  if (pinned) {
    if (!sameFingerprint(pinned, probe.fingerprint)) {
      throw new ShoalError(
        ErrorCode.TLS_FINGERPRINT_MISMATCH,
        `${url} presents a certificate with fingerprint ${probe.fingerprint}, not the ${pinned} given with --fingerprint; refusing to connect`,
        { expected: pinned, actual: probe.fingerprint },
      );
    }
    if (known && !sameFingerprint(known, pinned))
      out.note(`Replacing the trusted certificate of ${url} (was ${known}).`);
    if (!known || !sameFingerprint(known, pinned)) await remember(home, config, url, pinned);
    return { url, fingerprint: pinned };
  }
  if (known) {
    if (!sameFingerprint(known, probe.fingerprint)) {
      throw new ShoalError(
        ErrorCode.TLS_FINGERPRINT_MISMATCH,
        `THE CERTIFICATE OF ${url} HAS CHANGED: trusted ${known}, now presented ${probe.fingerprint}. ` +
          `Someone may be intercepting the connection; nothing was sent. ${retrustHint(url, probe.fingerprint).replace(/^i/, 'I')}`,
        { expected: known, actual: probe.fingerprint },
      );
    }
    return { url, fingerprint: formatFingerprint(known) };
  }
  out.note(`First connection to ${url}. Its certificate fingerprint (SHA-256) is:\n  ${probe.fingerprint}`);
  out.note(
    'Compare it with the fingerprint the coordinator printed when it started; it is now trusted for this URL.',
  );
  await remember(home, config, url, probe.fingerprint);
  return { url, fingerprint: probe.fingerprint };
}

export { saveConfig, configHome, loadConfig };
