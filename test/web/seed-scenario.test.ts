/**
 * The issue-5 seed scenario through the browser, with a real agent: the admin creates a group, a user registers
 * and asks to join, the admin approves; the user's agent comes online (the dashboard shows it without a reload);
 * the admin uploads a file to the pending list; the pending table turns "delivered" for that member live, and the
 * file on the agent's disk has the right SHA-256. A 1:1 send then shows among recent deliveries for its sender and its
 * recipient.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { createAgent, type Agent } from '../../src/agent/agent.ts';
import { silentLogger } from '../../src/logger.ts';
import { adminPassword, chromiumPath, fieldError, screenshot, sessionToken, signIn, startWebBed, waitUntil, type WebBed } from './browser.ts';

const skip = chromiumPath() ? false : 'chromium is not installed (apt-get install chromium); CI installs it';
if (skip) console.log(`# skipping web seed scenario: ${skip}`);

describe('seed scenario through the browser with a real agent', { skip }, () => {
  let bed: WebBed;
  let admin: Page;
  let alice: Page;
  let agent: Agent | undefined;
  let agentRoot: string;
  // Two pieces at the default 4 MiB piece size.
  const content = randomBytes(5 * 1024 * 1024 + 12345);
  const fileName = 'firmware-v2.bin';

  before(async () => {
    bed = await startWebBed();
    admin = await bed.newPage();
    alice = await bed.newPage();
    agentRoot = await mkdtemp(join(tmpdir(), 'shoal-web-agent-'));
  });
  after(async () => {
    await agent?.stop();
    await bed?.close();
    if (agentRoot) await rm(agentRoot, { recursive: true, force: true });
  });

  it('admin creates a group, alice registers and asks to join, admin approves', async () => {
    await signIn(admin, bed.url, 'admin', adminPassword);
    await admin.goto(`${bed.url}/#/groups`);
    await admin.getByLabel('Group name').fill('lab');
    await admin.getByRole('button', { name: 'Create group' }).click();
    await admin.getByRole('row', { name: /lab/ }).waitFor();

    await alice.goto(`${bed.url}/#/register`);
    await alice.getByLabel('Username').fill('alice');
    await alice.getByLabel('Password', { exact: true }).fill('alice-password');
    await alice.getByLabel('Repeat password').fill('alice-password');
    await alice.getByRole('button', { name: 'Create account' }).click();
    await alice.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
    await alice.goto(`${bed.url}/#/mine`);
    await alice.getByRole('button', { name: 'Request to join lab' }).click();
    await alice.getByRole('status').filter({ hasText: 'Asked to join lab' }).waitFor();

    await admin.goto(`${bed.url}/#/groups/lab/requests`);
    await admin.getByRole('button', { name: 'Approve alice' }).click();
    await admin.getByRole('status').filter({ hasText: 'Approved alice' }).waitFor();
  });

  it("shows alice's agent on the dashboard as soon as it connects", async () => {
    await admin.goto(`${bed.url}/#/`);
    await admin.getByText('No receiver is online.').waitFor();
    agent = createAgent(
      { logger: silentLogger },
      {
        serverUrl: bed.url,
        fingerprint: bed.fingerprint,
        token: await sessionToken(alice),
        downloadDir: join(agentRoot, 'downloads'),
        stateDir: join(agentRoot, 'state'),
        name: 'alice-laptop',
        listen: '127.0.0.1:0',
        maxBackoffMs: 1000,
      },
    );
    await agent.start();
    // No reload: the presence event redraws the list.
    await admin.getByRole('table', { name: 'Active receivers' }).getByRole('row', { name: /alice-laptop/ }).waitFor({ timeout: 30_000 });
  });

  it('delivers a file uploaded to the pending list and shows "delivered" live', async () => {
    await admin.goto(`${bed.url}/#/groups/lab/pending`);
    await admin.getByLabel('Or upload a new file to the pending list').setInputFiles({
      name: fileName,
      mimeType: 'application/octet-stream',
      buffer: content,
    });
    await admin.getByRole('button', { name: 'Upload', exact: true }).click();
    await admin.getByRole('status').filter({ hasText: `Added ${fileName} to the pending list` }).waitFor({ timeout: 60_000 });

    const cell = admin.getByRole('table', { name: 'Pending files by member' }).locator('td[data-member="alice"]').first();
    await waitUntil(async () => (await cell.count()) > 0 && (await cell.getAttribute('data-state')) === 'delivered', 90_000, 'alice to show delivered');
    assert.match((await cell.textContent()) ?? '', /delivered/);
    // The admin has no agent: still pending for them.
    assert.equal(await admin.locator('td[data-member="admin"]').first().getAttribute('data-state'), 'pending');
    await screenshot(admin, 'seed-pending-delivered');
    // Nothing is left for online members, so "send now" reports what it did per member without failing.
    await admin.getByRole('button', { name: 'Send now' }).click();
    await admin.getByRole('status').filter({ hasText: /^(Sent: .*|Nothing to send\.)$/ }).waitFor();

    const onDisk = await readFile(join(agentRoot, 'downloads', 'lab', fileName));
    assert.equal(createHash('sha256').update(onDisk).digest('hex'), createHash('sha256').update(content).digest('hex'));

    await admin.goto(`${bed.url}/#/`);
    await admin.getByRole('table', { name: 'Recent deliveries and failures' }).getByRole('row', { name: new RegExp(fileName.replace('.', '\\.')) }).waitFor();
    await screenshot(admin, 'seed-dashboard');
  });

  it('sends a file to one user from the send page and follows it to "delivered"', async () => {
    const direct = randomBytes(300 * 1024);
    await admin.goto(`${bed.url}/#/send`);
    await admin.getByLabel('To (username)').fill('nobody-here');
    await admin.getByLabel('File to send').setInputFiles({ name: 'note.bin', mimeType: 'application/octet-stream', buffer: direct });
    await admin.getByRole('button', { name: 'Send', exact: true }).click();
    await waitUntil(async () => (await fieldError(admin, 'To (username)')) !== '', 20_000, 'the unknown-user error');

    await admin.getByLabel('To (username)').fill('alice');
    await admin.getByRole('button', { name: 'Send', exact: true }).click();
    const status = admin.locator('[data-state]');
    await waitUntil(async () => (await status.count()) > 0 && (await status.getAttribute('data-state')) === 'delivered', 60_000, 'the 1:1 send to be delivered');
    const onDisk = await readFile(join(agentRoot, 'downloads', '_direct', 'admin', 'note.bin'));
    assert.equal(createHash('sha256').update(onDisk).digest('hex'), createHash('sha256').update(direct).digest('hex'));

    // Both ends list it among recent deliveries: the sender (it started here) and the recipient, whose open tab
    // heard of it over the live socket.
    for (const page of [admin, alice]) {
      await page.goto(`${bed.url}/#/`);
      const row = page.getByRole('table', { name: 'Recent deliveries and failures' }).getByRole('row', { name: /note\.bin/ });
      await row.waitFor({ timeout: 30_000 });
      assert.match((await row.textContent()) ?? '', /1:1.*alice.*delivered/);
    }
    await screenshot(alice, 'dashboard-direct');
  });
});
