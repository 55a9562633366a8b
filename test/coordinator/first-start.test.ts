/** First start versus later starts: the admin password is reported once, the certificate is kept. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCoordinator } from '../../src/coordinator/coordinator.ts';
import { createStore } from '../../src/store/create-store.ts';
import { silentLogger } from '../../src/logger.ts';
import { createTestClient } from './harness.ts';

describe('first start', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('creates admin with a generated password reported once, and reuses the certificate later', async () => {
    const saved = process.env.SHOAL_ADMIN_PASSWORD;
    delete process.env.SHOAL_ADMIN_PASSWORD;
    cleanups.push(async () => {
      if (saved !== undefined) process.env.SHOAL_ADMIN_PASSWORD = saved;
    });
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-first-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));

    const run = async () => {
      const store = await createStore({ url: join(dataDir, 'shoal.db') });
      const c = createCoordinator({ store, logger: silentLogger }, { dataDir, host: '127.0.0.1', port: 0 });
      const started = await c.start();
      const certPem = await readFile(join(dataDir, 'tls', 'cert.pem'), 'utf8');
      const client = createTestClient(started.url, certPem);
      return {
        started,
        client,
        stop: async () => {
          await client.close();
          await c.stop();
          await store.close();
        },
      };
    };

    const first = await run();
    assert.ok(first.started.adminPassword, 'a generated password is reported on first start');
    await first.client.login('admin', first.started.adminPassword);
    await first.stop();

    const second = await run();
    cleanups.push(second.stop);
    assert.equal(second.started.adminPassword, undefined, 'never reported again');
    assert.equal(second.started.fingerprint, first.started.fingerprint);
    await second.client.login('admin', first.started.adminPassword);
  });
});
