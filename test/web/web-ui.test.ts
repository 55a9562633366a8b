/**
 * The web UI in a real Chromium against a real coordinator: sign-in errors beside their fields, an admin creates
 * a group, a user registers and asks to join, the admin approves, the member uploads through the files tab and
 * finds the file with a search, a non-admin is kept out of admin pages, and screenshots for reviewers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Page } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { adminPassword, chromiumPath, fieldError, screenshot, sessionToken, signIn, startWebBed, waitUntil, type WebBed } from './browser.ts';

const skip = chromiumPath() ? false : 'chromium is not installed (apt-get install chromium); CI installs it';
if (skip) console.log(`# skipping web UI tests: ${skip}`);

describe('web UI in Chromium', { skip }, () => {
  let bed: WebBed;
  let admin: Page;
  let bob: Page;
  const report = Buffer.from('%PDF-1.4\n' + 'quarterly figures\n'.repeat(4000));
  const notes = Buffer.from('just some notes\n');

  before(async () => {
    bed = await startWebBed();
    admin = await bed.newPage();
    bob = await bed.newPage();
  });
  after(async () => {
    await bed?.close();
  });

  it('shows sign-in errors next to the field that caused them', async () => {
    await admin.goto(`${bed.url}/#/signin`);
    await admin.getByRole('button', { name: 'Sign in' }).click();
    assert.match(await fieldError(admin, 'Username'), /enter your username/i);

    await admin.getByLabel('Username').fill('admin');
    await admin.getByLabel('Password').fill('not-the-password');
    await admin.getByRole('button', { name: 'Sign in' }).click();
    await waitUntil(async () => (await fieldError(admin, 'Password')) !== '', 10_000, 'the password error');
    assert.equal(await fieldError(admin, 'Username'), '');
    assert.equal(await admin.getByLabel('Password').getAttribute('aria-invalid'), 'true');
    assert.equal(await admin.getByRole('heading', { name: 'Sign in' }).count(), 1, 'still on the sign-in page');
  });

  it('lets the admin sign in and create a group', async () => {
    await signIn(admin, bed.url, 'admin', adminPassword);
    await admin.getByRole('link', { name: 'Groups', exact: true }).click();
    await admin.getByLabel('Group name').fill('lab');
    await admin.getByRole('button', { name: 'Create group' }).click();
    await admin.getByRole('status').filter({ hasText: 'Group lab created' }).waitFor();
    await admin.getByRole('row', { name: /lab/ }).waitFor();

    // A clash is reported next to the name field.
    await admin.getByLabel('Group name').fill('lab');
    await admin.getByRole('button', { name: 'Create group' }).click();
    await waitUntil(async () => (await fieldError(admin, 'Group name')) !== '', 10_000, 'the duplicate-name error');
  });

  it('lets a new user register and ask to join, and the admin approve', async () => {
    await bob.goto(`${bed.url}/#/signin`);
    await bob.getByRole('link', { name: 'Create one' }).click();
    await bob.getByLabel('Username').fill('bob');
    await bob.getByLabel('Password', { exact: true }).fill('bob-password');
    await bob.getByLabel('Repeat password').fill('bob-password');
    await bob.getByRole('button', { name: 'Create account' }).click();
    await bob.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();

    // The admin watches the requests tab; the request and the decision arrive without a reload.
    await admin.goto(`${bed.url}/#/groups/lab/requests`);
    await admin.getByText('No pending requests.').waitFor();
    await admin.getByText('Live', { exact: true }).waitFor();

    await bob.getByRole('link', { name: 'My groups' }).click();
    await bob.getByText('Live', { exact: true }).waitFor();
    await bob.getByRole('button', { name: 'Request to join lab' }).click();
    await bob.getByRole('status').filter({ hasText: 'Asked to join lab' }).waitFor();
    await bob.getByRole('row', { name: /lab/ }).getByText('waiting for a decision').waitFor();

    await admin.getByRole('button', { name: 'Approve bob' }).click();
    await admin.getByRole('status').filter({ hasText: 'Approved bob' }).waitFor();
    await bob.getByRole('region', { name: 'Groups I belong to' }).getByRole('link', { name: 'lab' }).waitFor();

    await admin.getByRole('link', { name: 'Members' }).click();
    await admin.getByRole('row', { name: /bob/ }).waitFor();
  });

  it('adds and removes a member from the members tab, with errors next to the field', async () => {
    const created = await admin.evaluate(async () => {
      const token = (JSON.parse(sessionStorage.getItem('shoal.session') ?? '{}') as { token?: string }).token;
      const res = await fetch('/api/v1/users', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'dave', password: 'dave-password' }),
      });
      return res.status;
    });
    assert.equal(created, 200);
    await admin.goto(`${bed.url}/#/groups/lab/members`);
    await admin.getByLabel('Add a member (username)').fill('nobody-by-that-name');
    await admin.getByRole('button', { name: 'Add member' }).click();
    await waitUntil(async () => (await fieldError(admin, 'Add a member (username)')) !== '', 10_000, 'the unknown-user error');

    await admin.getByLabel('Add a member (username)').fill('dave');
    await admin.getByRole('button', { name: 'Add member' }).click();
    const row = admin.getByRole('row', { name: /dave/ });
    await row.waitFor();
    await admin.getByRole('button', { name: 'Remove dave' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Remove member' }).click();
    await waitUntil(async () => (await row.count()) === 0, 10_000, 'dave to be removed');
  });

  it('uploads through the files tab with progress, and the search finds the file', async () => {
    await bob.goto(`${bed.url}/#/groups/lab/files`);
    for (const [name, bytes, mimeType] of [
      ['report-2026.pdf', report, 'application/pdf'],
      ['notes.txt', notes, 'text/plain'],
    ] as const) {
      await bob.getByLabel('Share a file').setInputFiles({ name, mimeType, buffer: bytes });
      await bob.getByRole('button', { name: 'Upload', exact: true }).click();
      await bob.getByRole('status').filter({ hasText: `Shared ${name}` }).waitFor();
    }
    const table = bob.getByRole('table', { name: 'Files' });
    await table.getByRole('row', { name: /notes\.txt/ }).waitFor();
    await table.getByRole('row', { name: /report-2026\.pdf/ }).waitFor();

    await bob.getByLabel('Search', { exact: true }).fill('report');
    await waitUntil(async () => (await table.getByRole('row', { name: /notes\.txt/ }).count()) === 0, 10_000, 'the search to filter');
    assert.equal(await table.getByRole('row', { name: /report-2026\.pdf/ }).count(), 1);

    await bob.getByLabel('Search', { exact: true }).fill('');
    await bob.getByLabel('Type').fill('txt');
    await waitUntil(async () => (await table.getByRole('row', { name: /report-2026/ }).count()) === 0, 10_000, 'the type filter');
    assert.equal(await table.getByRole('row', { name: /notes\.txt/ }).count(), 1);
    await bob.getByLabel('Min size').fill('lots');
    await waitUntil(async () => (await fieldError(bob, 'Min size')) !== '', 10_000, 'the size error');
    await bob.getByRole('button', { name: 'Clear filters' }).click();

    // What the coordinator stored is what the browser sent.
    const files = await bed.store.listFiles((await bed.store.getGroupByName('lab'))!.id, {});
    const stored = files.find((f) => f.name === 'report-2026.pdf');
    assert.equal(stored?.sha256, createHash('sha256').update(report).digest('hex'));
    assert.equal(stored?.size, report.length);
  });

  it('downloads a file, verified, under its name', async () => {
    await bob.goto(`${bed.url}/#/groups/lab/files`);
    const [download] = await Promise.all([
      bob.waitForEvent('download'),
      bob.getByRole('button', { name: 'Download report-2026.pdf' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'report-2026.pdf');
    const path = await download.path();
    assert.ok(path, 'the browser saved the download');
    assert.equal(createHash('sha256').update(await readFile(path)).digest('hex'), createHash('sha256').update(report).digest('hex'));
  });

  it('unshares a file after confirmation', async () => {
    await bob.goto(`${bed.url}/#/groups/lab/files`);
    const table = bob.getByRole('table', { name: 'Files' });
    await bob.getByRole('button', { name: 'Unshare notes.txt' }).click();
    const dialog = bob.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await table.getByRole('row', { name: /notes\.txt/ }).count(), 1, 'cancel keeps the file');
    await bob.getByRole('button', { name: 'Unshare notes.txt' }).click();
    await dialog.getByRole('button', { name: 'Unshare', exact: true }).click();
    await waitUntil(async () => (await table.getByRole('row', { name: /notes\.txt/ }).count()) === 0, 10_000, 'the row to go');
  });

  it('keeps a non-admin out of admin pages with a clear message', async () => {
    assert.equal(await bob.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(), 0);
    await bob.goto(`${bed.url}/#/admin`);
    await bob.getByRole('heading', { name: 'Admins only' }).waitFor();
    assert.equal(await bob.getByRole('table').count(), 0, 'no user list is shown');
    // The group's owner tabs are not offered to a plain member either.
    await bob.goto(`${bed.url}/#/groups/lab/members`);
    await bob.getByRole('heading', { name: 'lab', level: 1 }).waitFor();
    assert.equal(await bob.getByRole('link', { name: 'Join requests' }).count(), 0);
    assert.equal(await bob.getByRole('link', { name: 'Audit log' }).count(), 0);

    await admin.goto(`${bed.url}/#/groups/lab/audit`);
    await admin.getByRole('heading', { name: 'Audit log' }).waitFor();
    await admin.getByRole('row', { name: /bob/ }).first().waitFor();

    assert.equal(await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(), 1);
    await admin.getByRole('link', { name: 'Users' }).click();
    await admin.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await admin.getByRole('row', { name: /bob/ }).waitFor();
  });

  it('writes screenshots of the dashboard, a group page and the pending table', async () => {
    await admin.goto(`${bed.url}/#/groups/lab/pending`);
    await admin.getByLabel('Add a shared file').selectOption({ label: `report-2026.pdf (${(report.length / 1024).toFixed(0)} KiB)` });
    await admin.getByRole('button', { name: 'Add to pending' }).click();
    const pending = admin.getByRole('table', { name: 'Pending files by member' });
    await pending.getByRole('row', { name: /report-2026\.pdf/ }).waitFor();
    const cell = pending.locator('td[data-member="bob"]').first();
    assert.equal(await cell.getAttribute('data-state'), 'pending');
    await screenshot(admin, 'pending-table');

    await admin.goto(`${bed.url}/#/groups/lab/files`);
    await admin.getByRole('table', { name: 'Files' }).waitFor();
    await screenshot(admin, 'group-page');

    await admin.goto(`${bed.url}/#/`);
    await admin.getByRole('heading', { name: 'Recent deliveries and failures' }).waitFor();
    await admin.getByRole('heading', { name: 'Active receivers' }).waitFor();
    await screenshot(admin, 'dashboard');

    await admin.setViewportSize({ width: 390, height: 844 });
    await admin.goto(`${bed.url}/#/groups/lab/members`);
    await admin.getByRole('row', { name: /bob/ }).waitFor();
    await screenshot(admin, 'group-page-phone');
    await admin.setViewportSize({ width: 1280, height: 860 });
  });
});

describe('web UI administration in Chromium', { skip }, () => {
  let bed: WebBed;
  let admin: Page;

  before(async () => {
    bed = await startWebBed();
    admin = await bed.newPage();
    await signIn(admin, bed.url, 'admin', adminPassword);
  });
  after(async () => {
    await bed?.close();
  });

  it('creates a user, makes them admin and deletes them', async () => {
    await admin.goto(`${bed.url}/#/admin`);
    await admin.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await admin.getByLabel('Username').fill('carol');
    await admin.getByLabel('Password').fill('short');
    await admin.getByRole('button', { name: 'Create user' }).click();
    assert.match(await fieldError(admin, 'Password'), /8 characters/);

    await admin.getByLabel('Password').fill('carol-password');
    await admin.getByRole('button', { name: 'Create user' }).click();
    await admin.getByRole('status').filter({ hasText: 'Created carol' }).waitFor();
    const row = admin.getByRole('row', { name: /carol/ });
    await row.waitFor();
    assert.equal(await row.getByRole('cell').first().textContent(), 'no');

    await admin.getByRole('button', { name: 'Make admin carol' }).click();
    await waitUntil(async () => (await row.getByRole('cell').first().textContent()) === 'yes', 10_000, 'carol to be admin');
    assert.equal((await bed.store.getUserByName('carol'))?.isAdmin, true);

    await admin.getByRole('button', { name: 'Delete user carol' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Delete user' }).click();
    await waitUntil(async () => (await admin.getByRole('row', { name: /carol/ }).count()) === 0, 10_000, 'carol to go');
    assert.equal(await bed.store.getUserByName('carol'), undefined);
  });

  it('creates a group with a chosen multicast address, refuses a bad one next to the field, deletes after confirmation', async () => {
    await admin.goto(`${bed.url}/#/groups`);
    await admin.getByLabel('Group name').fill('racks');
    await admin.getByLabel('Multicast address (optional)').fill('10.0.0.1');
    await admin.getByRole('button', { name: 'Create group' }).click();
    await waitUntil(async () => (await fieldError(admin, 'Multicast address (optional)')) !== '', 10_000, 'the address error');
    assert.equal(await bed.store.getGroupByName('racks'), undefined);

    await admin.getByLabel('Multicast address (optional)').fill('239.9.9.9');
    await admin.getByLabel('Multicast port (optional)').fill('7999');
    await admin.getByRole('button', { name: 'Create group' }).click();
    const row = admin.getByRole('row', { name: /racks/ });
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /239\.9\.9\.9:7999/);

    await admin.getByRole('button', { name: 'Delete group racks' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Delete group' }).click();
    await waitUntil(async () => (await admin.getByRole('row', { name: /racks/ }).count()) === 0, 10_000, 'the group to go');
    assert.equal(await bed.store.getGroupByName('racks'), undefined);
  });

  it('signs out and the token stops working', async () => {
    const token = await sessionToken(admin);
    await admin.getByRole('button', { name: 'Sign out' }).click();
    await admin.getByRole('heading', { name: 'Sign in' }).waitFor();
    const status = await admin.evaluate(
      async (t) => (await fetch('/api/v1/auth/me', { headers: { authorization: `Bearer ${t}` } })).status,
      token,
    );
    assert.equal(status, 401);
    await admin.goto(`${bed.url}/#/groups`);
    await admin.getByRole('heading', { name: 'Sign in' }).waitFor();
  });
});
