#!/usr/bin/env node
/* global process, console */
// Builds the optional native modules with the C compiler and the headers of the Node.js that runs this
// script, each on its own: build/shoal_udp.node, the batched UDP I/O that multicast uses on Linux
// (native/shoal_udp.c), build/shoal_erasure.node, the SIMD Reed–Solomon code of multicast repair
// (native/shoal_erasure.c), and build/shoal_gcm.node, AES-256-GCM of multicast chunks into buffers the caller
// owns, through the OpenSSL inside Node.js (native/shoal_gcm.c), and build/shoal_mem.node, buffers on transparent
// huge pages (native/shoal_mem.c). Never fails the install: a module that cannot be built has a JavaScript fallback
// (node:dgram, about 1 CPU-s more per 256 MiB at each end; the JS erasure code, several times slower), and this
// says so. `--force` rebuilds modules that look up to date.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => console.log(`shoal: ${msg}`);
const force = process.argv.includes('--force');

const modules = [
  {
    name: 'shoal_udp',
    what: 'batched UDP I/O',
    fallback: 'multicast uses node:dgram',
    linuxOnly: true,
    headers: ['node_api.h', 'uv.h'],
  },
  {
    name: 'shoal_erasure',
    what: 'native erasure code',
    fallback: 'multicast repair uses the JavaScript erasure code',
    linuxOnly: false,
    headers: ['node_api.h'],
  },
  {
    name: 'shoal_gcm',
    what: 'in-place AES-256-GCM',
    fallback: 'multicast seals and opens chunks with node:crypto',
    linuxOnly: false,
    headers: ['node_api.h', 'openssl/evp.h'],
  },
  {
    name: 'shoal_mem',
    what: 'huge-page buffers',
    fallback: 'multicast buffers use ordinary pages',
    linuxOnly: true,
    headers: ['node_api.h'],
  },
];

const candidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
].filter(Boolean);
const cc = process.env.CC || 'cc';

for (const mod of modules) {
  const src = join(root, 'native', `${mod.name}.c`);
  const out = join(root, 'build', `${mod.name}.node`);
  if (mod.linuxOnly && process.platform !== 'linux') {
    say(`${mod.what} is Linux-only: ${mod.fallback} here`);
    continue;
  }
  if (process.platform === 'win32') {
    say(`${mod.what} is not built on Windows: ${mod.fallback}`);
    continue;
  }
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs && !force) continue;
  const include = candidates.find((d) => mod.headers.every((h) => existsSync(join(d, h))));
  if (!include) {
    say(`no Node.js headers (${mod.headers.join(', ')}) in ${candidates.join(', ')}: ${mod.fallback} (install the nodejs headers, e.g. Debian's libnode-dev, for the ${mod.what})`);
    continue;
  }
  // macOS resolves N-API symbols from the host process at load time.
  const link = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-shared', '-fPIC', '-fvisibility=hidden', `-I${include}`, ...link, '-o', tmp, src, ...(mod.name === 'shoal_erasure' ? ['-lpthread'] : [])], { stdio: ['ignore', 'inherit', 'inherit'] });
    renameSync(tmp, out);
    say(`built ${out}`);
  } catch (err) {
    say(`could not build the ${mod.what} (${err.message.split('\n')[0]}): ${mod.fallback}`);
  }
}
