/**
 * Browser-test support: builds web/dist when it is missing or older than its sources, starts a real coordinator
 * serving it (SQLite in a temp dir, self-signed TLS), and launches Debian's Chromium through playwright-core
 * with a fresh profile. `chromiumPath()` is undefined when Chromium is not installed, so tests can skip with a
 * printed reason.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { fetch as undiciFetch } from 'undici';
import { createApiClient, type ApiClient, type FetchLike } from '../../src/client/api-client.ts';
import { createPinnedDispatcher } from '../../src/transfer/swarm/pinned-dispatcher.ts';
import { createCoordinator, type Coordinator } from '../../src/coordinator/coordinator.ts';
import { createStore } from '../../src/store/create-store.ts';
import type { Store } from '../../src/store/store.ts';
import { silentLogger } from '../../src/logger.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const webDist = join(repoRoot, 'web', 'dist');
/** Where screenshots go (named in the README). */
export const screenshotDir = join(repoRoot, 'artifacts', 'screenshots');
export const adminPassword = 'admin-password-for-web-tests';

const chromiumCandidates = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** Path of the Chromium binary, or undefined when none is installed. */
export function chromiumPath(): string | undefined {
  return chromiumCandidates.find((p) => existsSync(p));
}

/** Newest modification time (ms) of any file under `path`. */
function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}

/** Builds web/dist with Vite when it is missing or older than the web sources or what they import from src/. */
export function ensureWebBuilt(): void {
  const built = existsSync(join(webDist, 'index.html')) ? statSync(join(webDist, 'index.html')).mtimeMs : 0;
  const sources = Math.max(
    newestMtime(join(repoRoot, 'web', 'src')),
    newestMtime(join(repoRoot, 'web', 'index.html')),
    newestMtime(join(repoRoot, 'web', 'vite.config.ts')),
    newestMtime(join(repoRoot, 'src', 'protocol')),
    newestMtime(join(repoRoot, 'src', 'client')),
  );
  if (built > sources) return;
  console.log('# building web/dist (missing or stale)');
  execFileSync(join(repoRoot, 'node_modules', '.bin', 'vite'), ['build', 'web', '--logLevel', 'warn'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 180_000,
  });
}

/** A running coordinator serving the web UI, and a browser pointed at it. */
export interface WebBed {
  url: string;
  /** SHA-256 fingerprint of the coordinator's certificate (for agents that pin it). */
  fingerprint: string;
  coordinator: Coordinator;
  store: Store;
  dataDir: string;
  context: BrowserContext;
  /** A new tab (its own sessionStorage, so its own signed-in user). */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Starts a coordinator with webRoot = web/dist and a headless Chromium with a fresh profile. `pieceSize` (bytes)
 * overrides the coordinator's piece size for files shared in the test.
 */
export async function startWebBed(opts: { registration?: boolean; pieceSize?: number } = {}): Promise<WebBed> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('chromium is not installed');
  ensureWebBuilt();
  const dataDir = await mkdtemp(join(tmpdir(), 'shoal-web-'));
  const profileDir = await mkdtemp(join(tmpdir(), 'shoal-chromium-'));
  const store = await createStore({ url: join(dataDir, 'shoal.db') });
  const coordinator = createCoordinator(
    { store, logger: silentLogger },
    { dataDir, host: '127.0.0.1', port: 0, adminPassword, webRoot: webDist, registration: opts.registration ?? true, pieceSize: opts.pieceSize },
  );
  let context: BrowserContext | undefined;
  try {
    const started = await coordinator.start();
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath,
      headless: true,
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 860 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-proxy-server',
      ],
      timeout: 60_000,
    });
    const ctx = context;
    const pages: Page[] = [];
    return {
      url: started.url,
      fingerprint: started.fingerprint,
      coordinator,
      store,
      dataDir,
      context: ctx,
      async newPage() {
        const page = await ctx.newPage();
        page.setDefaultTimeout(20_000);
        pages.push(page);
        return page;
      },
      async close() {
        await ctx.close().catch(() => undefined);
        await coordinator.stop();
        await store.close();
        await rm(dataDir, { recursive: true, force: true });
        await rm(profileDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await context?.close().catch(() => undefined);
    await coordinator.stop().catch(() => undefined);
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(profileDir, { recursive: true, force: true });
    throw err;
  }
}

/** Signs in through the form and waits for the dashboard. */
export async function signIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/#/signin`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
}

/** The error text shown next to the control labelled `label` (empty string when none). */
export async function fieldError(page: Page, label: string): Promise<string> {
  const field = page.locator('.field', { has: page.getByLabel(label, { exact: true }) });
  const err = field.locator('.field-error');
  return (await err.count()) ? ((await err.first().textContent()) ?? '') : '';
}

/** Waits until `fn` returns true, polling every 100 ms, for at most `ms` (and `maxTries` tries, default 400). */
export async function waitUntil(fn: () => Promise<boolean>, ms: number, what: string, maxTries = 400): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < maxTries; i++) {
    if (await fn()) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Saves a full-page screenshot under artifacts/screenshots/. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The bearer token the page's signed-in session holds (sessionStorage). */
export async function sessionToken(page: Page): Promise<string> {
  const token = await page.evaluate(() => {
    const raw = sessionStorage.getItem('shoal.session');
    return raw ? (JSON.parse(raw) as { token?: string }).token : undefined;
  });
  if (!token) throw new Error('the page is not signed in');
  return token;
}

/**
 * A typed API client signed in as `username` against the bed's coordinator (certificate pinned), for setting up
 * what a test does not need to click through. Its connections close with the returned `close`.
 */
export async function apiAs(bed: Pick<WebBed, 'url' | 'fingerprint'>, username: string, password: string): Promise<ApiClient & { close(): Promise<void> }> {
  const dispatcher = createPinnedDispatcher({ fingerprint: bed.fingerprint, connections: 4 });
  const fetchPinned = ((input: string, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as FetchLike;
  const client = createApiClient({ baseUrl: bed.url, fetch: fetchPinned });
  const { token } = await client.call('login', { body: { username, password } });
  client.setToken(token);
  return Object.assign(client, { close: () => dispatcher.close() });
}
