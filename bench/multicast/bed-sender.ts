/**
 * The multicast sender on the namespace bed: `node --import tsx bed-sender.ts CONFIG.json`, run inside
 * namespace s. Asks each receiver's control server for its status after every pass, prints the SendResult as
 * one JSON line ({"result":…, "start":ms, "end":ms, "cpu":…}) and tells every receiver to exit.
 */
import { createLogger } from '../../src/logger.ts';
import { createMulticastSender } from '../../src/transfer/multicast/sender.ts';
import type { ReceiverStatus } from '../../src/transfer/multicast/receiver-status.ts';
import { readBedConfig, receiverIp, senderIp } from './bed-config.ts';

const c = await readBedConfig(process.argv[2]);
const logger = createLogger({ level: (process.env.SHOAL_LOG as 'info' | undefined) ?? 'warn', component: 'bed:s' });
const ips = Array.from({ length: c.n }, (_, i) => receiverIp(c, i + 1));

async function ask(ip: string, path: string, signal: AbortSignal): Promise<Response | null> {
  try {
    return await fetch(`http://${ip}:${c.controlPort}${path}`, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) });
  } catch {
    return null;
  }
}

const sender = createMulticastSender({
  logger,
  async collectStatus(pass, signal) {
    const answers = await Promise.all(ips.map(async (ip) => {
      const res = await ask(ip, `/status?pass=${pass}`, signal);
      return res && res.ok ? ((await res.json()) as ReceiverStatus) : null;
    }));
    return answers.filter((a): a is ReceiverStatus => a !== null);
  },
}, {
  address: c.group, port: c.port, interface: senderIp(c), chunkSize: c.chunkSize, rateBps: c.rateBps, minRateBps: c.minRateBps,
  maxPasses: c.maxPasses, parity: c.parity, key: Buffer.from(c.keyHex, 'hex'), transferId: c.transferId, manifest: c.manifest, path: c.path,
});
const start = Date.now();
const cpu0 = process.cpuUsage();
const faults0 = process.resourceUsage().minorPageFault;
const result = await sender.run(AbortSignal.timeout(c.timeoutMs));
const end = Date.now();
const cpu = process.cpuUsage();
const runCpu = process.cpuUsage(cpu0);
const runPageFaults = process.resourceUsage().minorPageFault - faults0;
if (!c.receiversExit) {
  await new Promise((r) => setTimeout(r, 300)); // receivers print their "done" line before they are told to go
  await Promise.all(ips.map((ip) => ask(ip, '/bye', AbortSignal.timeout(5000))));
}
console.log(JSON.stringify({ result, start, end, cpu, runCpu, runPageFaults }));
