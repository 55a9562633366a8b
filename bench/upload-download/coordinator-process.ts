/**
 * A coordinator in its own process for the benchmark, so its RSS is measured alone:
 * `--data DIR`; prints `{"url","fingerprint","pid"}` on stdout once listening; stops on SIGTERM.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCoordinator } from '../../src/coordinator/coordinator.ts';
import { createStore } from '../../src/store/create-store.ts';
import { createLogger } from '../../src/logger.ts';

const { values } = parseArgs({ options: { data: { type: 'string' } } });
if (!values.data) {
  console.error('usage: coordinator-process.ts --data DIR');
  process.exit(2);
}
const logger = createLogger({ level: 'warn' });
const store = await createStore({ url: join(values.data, 'shoal.db'), logger });
const coordinator = createCoordinator(
  { store, logger },
  { dataDir: values.data, host: '127.0.0.1', port: 0 },
);
const started = await coordinator.start();
console.log(JSON.stringify({ url: started.url, fingerprint: started.fingerprint, pid: process.pid }));
process.once('SIGTERM', () => {
  void coordinator
    .stop()
    .then(() => store.close())
    .then(() => process.exit(0));
});
