#!/usr/bin/env node
/* global process, console */
// Builds build/shoal_udp.node, the batched UDP I/O that multicast uses on Linux (native/shoal_udp.c), with the
// C compiler and the headers of the Node.js that runs this script. Never fails the install: without a
// compiler or headers, multicast runs on node:dgram (about 1 CPU-s more per 256 MiB at each end) and this
// says so.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native', 'shoal_udp.c');
const out = join(root, 'build', 'shoal_udp.node');
const say = (msg) => console.log(`shoal: ${msg}`);

if (process.platform !== 'linux') {
  say('batched UDP I/O is Linux-only; multicast uses node:dgram here');
  process.exit(0);
}
if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs && !process.argv.includes('--force')) process.exit(0);
const candidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
].filter(Boolean);
const include = candidates.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
if (!include) {
  say(`no Node.js headers (node_api.h) in ${candidates.join(', ')}: multicast uses node:dgram (install the nodejs headers, e.g. Debian's libnode-dev, for batched I/O)`);
  process.exit(0);
}
const cc = process.env.CC || 'cc';
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
try {
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-shared', '-fPIC', '-fvisibility=hidden', `-I${include}`, '-o', tmp, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  renameSync(tmp, out);
  say(`built ${out}`);
} catch (err) {
  say(`could not build batched UDP I/O (${err.message.split('\n')[0]}): multicast uses node:dgram`);
}
