/**
 * A transfer watched while it runs, in a real browser: the coordinator's piece streams are capped
 * (SHOAL_PIECE_STREAM_RATE) and pieces are small, so a 32 MiB delivery to a real agent lasts a few seconds.
 * The dashboard shows a progress bar for the receiver whose value grows, with its rate and transport, and the
 * pending table shows "receiving" with bytes, then "delivered" — all without a reload. Nothing here asserts a
 * duration: the cap only makes the in-between states long enough to be seen. Then a push to a group with two
 * agents online goes out by loopback multicast (at a low rate ceiling), and the dashboard's multicast card shows
 * each receiver's bytes, loss, passes and state.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

// Read by the coordinator when it starts: 2 MiB/s per piece stream (a 1 MiB piece is held 0.5 s), and
// multicast sent on loopback.
process.env.SHOAL_PIECE_STREAM_RATE = String(2 * 1024 * 1024);
process.env.SHOAL_MULTICAST_INTERFACE = '127.0.0.1';

const { createAgent } = await import('../../src/agent/agent.ts');
const { silentLogger } = await import('../../src/logger.ts');
const { adminPassword, apiAs, chromiumPath, screenshot, signIn, startWebBed, waitUntil } = await import('./browser.ts');
const { loopbackMulticastProblem } = await import('../multicast/helpers.ts');
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
  const agents: Agent[] = [];
  let agentRoot: string;

  /** Signs `username` in through the API and starts their agent `<username>-box` (downloads under agentRoot/<username>). */
  const startAgentFor = async (username: string, password: string): Promise<Agent> => {
    const userApi = await apiAs(bed, username, password);
    const token = userApi.token!;
    await userApi.close();
    const a = createAgent(
      { logger: silentLogger },
      {
        serverUrl: bed.url,
        fingerprint: bed.fingerprint,
        token,
        downloadDir: join(agentRoot, username, 'downloads'),
        stateDir: join(agentRoot, username, 'state'),
        name: `${username}-box`,
        listen: '127.0.0.1:0',
        // Two streams at the cap: a swarm download arrives in ~1 MiB steps, a few per second.
        streams: 2,
        multicastInterface: '127.0.0.1',
        maxBackoffMs: 1000,
      },
    );
    await a.start();
    return a;
  };
  const content = randomBytes(32 * MiB + 4321);
  const fileName = 'disk-image.img';

  before(async () => {
    bed = await startWebBed({ pieceSize: MiB });
    agentRoot = await mkdtemp(join(tmpdir(), 'shoal-web-live-'));
    adminApi = await apiAs(bed, 'admin', adminPassword);
    await adminApi.call('createUser', { body: { username: 'bob', password: 'bob-password' } });
    await adminApi.call('createGroup', { body: { name: 'studio' } });
    await adminApi.call('addMember', { params: { group: 'studio', username: 'bob' } });
    agents.push(await startAgentFor('bob', 'bob-password'));
    dashboard = await bed.newPage();
    pending = await bed.newPage();
  });
  after(async () => {
    for (const a of agents) await a.stop();
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
      // Polled fast and often: the in-between states are what this test is about.
      1200,
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

    const onDisk = await readFile(join(agentRoot, 'bob', 'downloads', 'studio', fileName));
    assert.equal(createHash('sha256').update(onDisk).digest('hex'), createHash('sha256').update(content).digest('hex'));

    // The dashboard drops the finished transfer and lists it under recent deliveries, still without a reload.
    await dashboard.getByText('Nothing is being transferred right now.').waitFor({ timeout: 30_000 });
    await dashboard.getByRole('table', { name: 'Recent deliveries and failures' }).getByRole('row', { name: /disk-image\.img/ }).waitFor({ timeout: 30_000 });
    for (const p of [dashboard, pending]) {
      assert.equal(await p.evaluate(() => (window as unknown as { shoalMarker?: number }).shoalMarker), 1, 'the page was not reloaded');
    }
  });

  it('shows a multicast push per receiver: bytes, loss, passes and state', async (t) => {
    const problem = await loopbackMulticastProblem();
    if (problem) {
      console.log(`# skipping the multicast view: ${problem}`);
      return t.skip(problem);
    }
    await adminApi.call('createUser', { body: { username: 'carol', password: 'carol-password' } });
    await adminApi.call('createGroup', { body: { name: 'floor' } });
    for (const u of ['bob', 'carol']) await adminApi.call('addMember', { params: { group: 'floor', username: u } });
    agents.push(await startAgentFor('carol', 'carol-password'));
    await dashboard.getByRole('table', { name: 'Active receivers' }).getByRole('row', { name: /carol-box/ }).waitFor({ timeout: 30_000 });
    const bytes = randomBytes(16 * MiB + 777);
    const name = 'release.tar';
    const { file } = await adminApi.upload('shareFile', { params: { group: 'floor' }, query: { name } }, bytes);
    await pending.goto(`${bed.url}/#/groups/floor/pending`);
    await pending.getByText('Nothing pending in this group.').waitFor();

    // A low ceiling (24 Mbit/s: about 6 s a pass) so the transfer can be watched.
    const pushed = await adminApi.call('pushFile', { params: { group: 'floor' }, body: { fileId: file.id, rateMbit: 24 } });
    assert.ok(pushed.transferId, 'two members online: the push goes by multicast');

    const card = dashboard.locator('article.multicast-transfer', { hasText: name });
    const bobRow = card.locator('tr[data-receiver="bob"]');
    const liveBar = dashboard.getByRole('progressbar', { name: `${name} to bob-box (bob)` });
    const cells = pending.getByRole('table', { name: 'Pending files by member' }).locator('td[data-member="bob"], td[data-member="carol"]');
    let sawSending = false;
    let sawMulticastBar = false;
    let shot = false;
    await waitUntil(
      async () => {
        if ((await card.count()) > 0 && (await card.getAttribute('data-state').catch(() => null)) === 'sending') {
          sawSending = true;
          const text = (await bobRow.textContent().catch(() => '')) ?? '';
          if (!shot && /[1-9][\d.]* MiB of 16 MiB/.test(text)) {
            await screenshot(dashboard, 'dashboard-multicast');
            shot = true;
          }
        }
        if ((await liveBar.count()) > 0) {
          const text = (await dashboard.locator('.transfers li', { has: liveBar }).textContent().catch(() => '')) ?? '';
          if (/multicast|repair/.test(text)) sawMulticastBar = true;
        }
        const states = await cells.evaluateAll((tds) => tds.map((td) => td.getAttribute('data-state')));
        return states.length === 2 && states.every((st) => st === 'delivered');
      },
      120_000,
      'bob and carol to show delivered',
      1200,
    );
    assert.ok(sawSending, 'the multicast card showed the transfer while it was sending');
    assert.ok(sawMulticastBar, 'the transfers-in-progress bar said how the bytes came (multicast or repair)');
    for (const text of await cells.allTextContents()) assert.match(text, /delivered.*(multicast|repair)/);

    // Once the sender stops, the card says so and keeps each receiver's figures.
    await waitUntil(async () => (await card.getAttribute('data-state').catch(() => null)) === 'done', 30_000, 'the transfer to show done');
    for (const who of ['bob', 'carol']) {
      const row = card.locator(`tr[data-receiver="${who}"]`);
      const cellsText = await row.locator('th, td').allTextContents();
      assert.match(cellsText[0], new RegExp(`${who}-box`));
      assert.match(cellsText[1], /MiB of 16 MiB/);
      assert.match(cellsText[2], /^[\d.]+ %$/);
      assert.match(cellsText[3], /^[1-9]\d*$/);
      assert.match(cellsText[4], /complete|repair/);
    }
    if (!shot) await screenshot(dashboard, 'dashboard-multicast');
    for (const who of ['bob', 'carol']) {
      const onDisk = await readFile(join(agentRoot, who, 'downloads', 'floor', name));
      assert.equal(createHash('sha256').update(onDisk).digest('hex'), createHash('sha256').update(bytes).digest('hex'));
    }
  });
});
