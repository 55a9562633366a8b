/**
 * Runs one agent as its own process, for tests that kill or freeze it (SIGKILL, SIGSTOP). Options come as
 * one JSON argument (AgentOptions); prints `ready <agentId>` once started, stops cleanly on SIGTERM.
 */
import { createAgent, type AgentOptions } from '../../src/agent/agent.ts';
import { createLogger } from '../../src/logger.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as AgentOptions;
const agent = createAgent(
  { logger: createLogger({ level: (process.env.SHOAL_LOG as 'info' | undefined) ?? 'warn' }) },
  options,
);
await agent.start();
process.stdout.write(`ready ${agent.agentId}\n`);
process.once('SIGTERM', () => {
  void agent.stop().then(() => process.exit(0));
});
