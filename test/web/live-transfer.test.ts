/**
 * A transfer watched while it runs, in a real browser: the coordinator's piece streams are capped
 * (SHOAL_PIECE_STREAM_RATE) and pieces are small, so a 32 MiB delivery to a real agent lasts a few seconds.
 * The dashboard shows a progress bar for the receiver whose value grows, with its rate and transport, and the
 * pending table shows "receiving" with bytes, then "delivered" — all without a reload. Nothing here asserts a
 * duration: the cap only makes the in-between states long enough to be seen.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

// Read by the coordinator when it starts: 2 MiB/s per piece stream (a 1 MiB piece is held 0.5 s).
process.env.SHOAL_PIECE_STREAM_RATE = String(2 * 1024 * 1024);

const { createAgent } = await import('../../src/agent/agent.ts');
const { silentLogger } = await import('../../src/logger.ts');
const { adminPassword, apiAs, chromiumPath, screenshot, signIn, startWebBed, waitUntil } = await import('./browser.ts');
type WebBed = Awaited<ReturnType<typeof startWebBed>>;
type Agent = ReturnType<typeof createAgent>;
type Api = Awaited<ReturnType<typeof apiAs>>;

const skip = chromiumPath() ? false : 'chromium is not installed (apt-get install chromium); CI installs it';
if (skip) console.log(`# skipping live transfer views: ${skip}`);

const MiB = 1024 * 1024;

describe('live transfer views', { skip }, () => {
  let bed: WebBed;
  let adminApi: Api;
  let dashboard: Page;
  let pending: Page;
  let agent: Agent | undefined;
  let agentRoot: string;
  const content = randomBytes(32 * MiB + 4321);
  const fileName = 'disk-image.img';

  before(async () => {
    bed = await startWebBed({ pieceSize: MiB });
    agentRoot = await mkdtemp(join(tmpdir(), 'shoal-web-live-'));
    adminApi = await apiAs(bed, 'admin', adminPassword);
    await adminApi.call('createUser', { body: { username: 'bob', password: 'bob-password' } });
    await adminApi.call('createGroup', { body: { name: 'studio' } });
    await adminApi.call('addMember', { params: { group: 'studio', username: 'bob' } });
    const bobApi = await apiAs(bed, 'bob', 'bob-password');
    const bobToken = bobApi.token!;
    await bobApi.close();
    agent = createAgent(
      { logger: silentLogger },
      {
        serverUrl: bed.url,
        fingerprint: bed.fingerprint,
        token: bobToken,
        downloadDir: join(agentRoot, 'downloads'),
        stateDir: join(agentRoot, 'state'),
        name: 'bob-box',
        listen: '127.0.0.1:0',
        // Two streams at the cap: the file arrives in ~1 MiB steps, a few per second.
        streams: 2,
        maxBackoffMs: 1000,
      },
    );
    await agent.start();
    dashboard = await bed.newPage();
    pending = await bed.newPage();
  });
  after(async () => {
    await agent?.stop();
    await adminApi?.close();
    await bed?.close();
    if (agentRoot) await rm(agentRoot, { recursive: true, force: true });
  });

  it('shows a growing progress bar on the dashboard and "receiving" with bytes in the pending table, live', async () => {
    await signIn(dashboard, bed.url, 'admin', adminPassword);
    await signIn(pending, bed.url, 'admin', adminPassword);
    await dashboard.getByRole('table', { name: 'Active receivers' }).getByRole('row', { name: /bob-box/ }).waitFor({ timeout: 30_000 });
    const { file } = await adminApi.upload('shareFile', { params: { group: 'studio' }, query: { name: fileName } }, content);
    assert.equal(file.pieceSize, MiB);
    await pending.goto(`${bed.url}/#/groups/studio/pending`);
    await pending.getByText('Nothing pending in this group.').waitFor();
    // A marker that a reload or navigation would wipe: every change below must arrive live.
    for (const p of [dashboard, pending]) await p.evaluate(() => ((window as unknown as { shoalMarker: number }).shoalMarker = 1));

    await adminApi.call('addPending', { params: { group: 'studio' }, body: { fileId: file.id } });

    const bar = dashboard.getByRole('progressbar', { name: `${fileName} to bob-box (bob)` });
    const cell = pending.getByRole('table', { name: 'Pending files by member' }).locator('td[data-member="bob"]');
    const values: number[] = [];
    let barText = '';
    let cellText = '';
    let shotDashboard = false;
    let shotPending = false;
    let shotPendingLate = false;
    await waitUntil(
      async () => {
        if ((await bar.count()) > 0) {
          const v = Number(await bar.getAttribute('value').catch(() => NaN));
          const text = (await dashboard.locator('.transfers li', { has: bar }).textContent().catch(() => '')) ?? '';
          if (Number.isFinite(v) && v > 0 && v < 100) {
            if (values.at(-1) !== v) values.push(v);
            barText = text;
            if (!shotDashboard && v >= 20) {
              await screenshot(dashboard, 'dashboard-live');
              shotDashboard = true;
            }
          }
        }
        if ((await cell.count()) > 0 && (await cell.getAttribute('data-state').catch(() => null)) === 'receiving') {
          const text = (await cell.textContent().catch(() => '')) ?? '';
          if (/MiB of 32 MiB/.test(text)) {
            cellText = text;
            // The first sighting, replaced by one further along when there is one.
            const v = Number(await cell.locator('progress').getAttribute('value').catch(() => NaN));
            if (!shotPending || (!shotPendingLate && v >= 20)) {
              await screenshot(pending, 'pending-receiving');
              shotPendingLate = shotPending && v >= 20;
              shotPending = true;
            }
          }
        }
        return (await cell.count()) > 0 && (await cell.getAttribute('data-state').catch(() => null)) === 'delivered';
      },
      120_000,
      'bob to show delivered in the pending table',
    );

    // The bar moved forward at least once while the file was in flight, without a reload.
    assert.ok(values.length >= 2, `the dashboard bar should change while in flight; saw ${JSON.stringify(values)}`);
    for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `bar values only grow: ${JSON.stringify(values)}`);
    // Bytes of the total, a rate, and how the bytes come (one agent online: the swarm, from the coordinator).
    assert.match(barText, /[\d.]+ MiB of 32 MiB/);
    assert.match(barText, /[\d.]+ (B|KiB|MiB)\/s/);
    assert.match(barText, /swarm/);
    assert.ok(shotDashboard, 'a screenshot of the dashboard mid-transfer was taken');
    assert.match(cellText, /receiving/);
    assert.match(cellText, /[\d.]+ MiB of 32 MiB/);
    assert.ok(shotPending, 'a screenshot of the pending table mid-transfer was taken');
    assert.match((await cell.textContent()) ?? '', /delivered/);

    const onDisk = await readFile(join(agentRoot, 'downloads', 'studio', fileName));
    assert.equal(createHash('sha256').update(onDisk).digest('hex'), createHash('sha256').update(content).digest('hex'));

    // The dashboard drops the finished transfer and lists it under recent deliveries, still without a reload.
    await dashboard.getByText('Nothing is being transferred right now.').waitFor({ timeout: 30_000 });
    await dashboard.getByRole('table', { name: 'Recent deliveries and failures' }).getByRole('row', { name: /disk-image\.img/ }).waitFor({ timeout: 30_000 });
    for (const p of [dashboard, pending]) {
      assert.equal(await p.evaluate(() => (window as unknown as { shoalMarker?: number }).shoalMarker), 1, 'the page was not reloaded');
    }
  });
});
