/**
 * The web UI's doors in Chromium: a server with registration closed offers no sign-up and says so at the
 * register URL; the sign-in form works from the keyboard alone; an unknown route says so; the coordinator's SPA
 * fallback serves the app at a deep path; without the events socket the UI says so and still works.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { adminPassword, chromiumPath, startWebBed, type WebBed } from './browser.ts';

const skip = chromiumPath() ? false : 'chromium is not installed (apt-get install chromium); CI installs it';
if (skip) console.log(`# skipping web access tests: ${skip}`);

describe('web UI on a server with registration closed', { skip }, () => {
  let bed: WebBed;
  let page: Page;

  before(async () => {
    bed = await startWebBed({ registration: false });
    page = await bed.newPage();
  });
  after(async () => {
    await bed?.close();
  });

  it('offers no sign-up link and explains at the register URL', async () => {
    await page.goto(`${bed.url}/#/signin`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // The link appears only once /info said registration is open; give that answer time to arrive.
    await page.waitForLoadState('networkidle');
    assert.equal(await page.getByRole('link', { name: 'Create one' }).count(), 0);
    await page.goto(`${bed.url}/#/register`);
    await page.getByRole('heading', { name: 'Registration is closed' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Create account' }).count(), 0);
  });

  it('signs in with the keyboard alone', async () => {
    await page.goto(`${bed.url}/#/signin`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    let focused = '';
    for (let i = 0; i < 10 && focused !== 'username'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name ?? '');
    }
    assert.equal(focused, 'username', 'Tab reaches the username field');
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    await page.keyboard.type(adminPassword);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  });

  it('sends the user back to sign in, saying why, when the server ends the session', async () => {
    await page.evaluate(async () => {
      const token = (JSON.parse(sessionStorage.getItem('shoal.session') ?? '{}') as { token?: string }).token;
      await fetch('/api/v1/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    });
    await page.getByRole('link', { name: 'Groups', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByText('Your session has ended. Sign in again.').waitFor();
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(adminPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  });

  it('says so for an unknown page, and the app loads at a deep path through the SPA fallback', async () => {
    await page.goto(`${bed.url}/#/no/such/page`);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    const res = await page.goto(`${bed.url}/some/deep/path`);
    assert.equal(res?.status(), 200);
    await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  });

  it('says "live updates unavailable" when the events socket cannot be used, and keeps working', async () => {
    const cut = await bed.newPage();
    await cut.routeWebSocket(/\/api\/v1\/events/, (ws) => ws.close({ code: 1011, reason: 'blocked by the test' }));
    await cut.goto(`${bed.url}/#/signin`);
    await cut.getByLabel('Username').fill('admin');
    await cut.getByLabel('Password').fill(adminPassword);
    await cut.getByRole('button', { name: 'Sign in' }).click();
    await cut.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
    await cut.getByText('Live updates unavailable', { exact: true }).waitFor();
    await cut.getByText(/refreshes every few seconds instead/).waitFor();
    await cut.getByRole('link', { name: 'Groups', exact: true }).click();
    await cut.getByLabel('Group name').fill('offline-ok');
    await cut.getByRole('button', { name: 'Create group' }).click();
    await cut.getByRole('row', { name: /offline-ok/ }).waitFor();
  });
});
