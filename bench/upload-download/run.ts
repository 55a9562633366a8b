/**
 * Issue 2 benchmark: upload then download a file over loopback HTTPS, to the coordinator and to nginx
 * (WebDAV PUT / static GET) with the same client (curl) and the same certificate, in one run. Prints MB/s
 * each way, the coordinator/nginx ratio, and the coordinator's peak RSS (VmHWM) for two file sizes, which
 * should stay flat as the file grows. Asserts nothing about time.
 *
 *   node --import tsx bench/upload-download/run.ts [--size-mib 1024] [--small-mib 128] [--keep]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    'small-mib': { type: 'string', default: '128' },
    keep: { type: 'boolean', default: false },
  },
});
const bigMiB = Number(values['size-mib']);
const smallMiB = Number(values['small-mib']);
const MiB = 1024 * 1024;
const adminPassword = 'bench-admin-password';
const child = fileURLToPath(new URL('./coordinator-process.ts', import.meta.url));

function need(bin: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (!path) {
    console.error(`bench: ${bin} not found on PATH`);
    process.exit(1);
  }
  return path;
}

async function makeFile(path: string, mib: number): Promise<void> {
  const chunk = Buffer.alloc(MiB);
  const out = createWriteStream(path);
  for (let i = 0; i < mib; i++) {
    randomFillSync(chunk, 0, 4096); // vary each MiB a little so nothing dedupes or compresses trivially
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

/** Runs curl; returns seconds from its own time_total and the HTTP status. */
function curl(args: string[]): { seconds: number; status: number; body: string } {
  const r = spawnSync('curl', ['-sS', '-w', '\\n%{http_code} %{time_total}', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
  });
  if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
  const lines = r.stdout.trimEnd().split('\n');
  const [code, total] = (lines.pop() ?? '0 0').split(' ');
  return { seconds: Number(total), status: Number(code), body: lines.join('\n') };
}

function peakRssMiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then(
    (s) => Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024,
  );
}

async function startCoordinator(dataDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, '--data', dataDir], {
    env: { ...process.env, SHOAL_ADMIN_PASSWORD: adminPassword },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('coordinator did not start')), 60_000);
    createInterface({ input: proc.stdout! }).once('line', (l) => {
      clearTimeout(t);
      resolve(l);
    });
    proc.once('exit', (c) => reject(new Error(`coordinator exited ${c}`)));
  });
  return { proc, url: (JSON.parse(line) as { url: string }).url };
}

function stopProcess(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

interface Run {
  upMBs: number;
  downMBs: number;
  peakRssMiB?: number;
}

const mbs = (bytes: number, s: number) => bytes / 1e6 / s;

async function benchCoordinator(work: string, file: string, bytes: number, tag: string): Promise<Run> {
  const dataDir = join(work, `coord-${tag}`);
  await mkdir(dataDir, { recursive: true });
  const { proc, url } = await startCoordinator(dataDir);
  try {
    const ca = join(dataDir, 'tls', 'cert.pem');
    const login = curl([
      '--cacert',
      ca,
      '-H',
      'content-type: application/json',
      '-d',
      JSON.stringify({ username: 'admin', password: adminPassword }),
      `${url}/api/v1/auth/login`,
    ]);
    const token = (JSON.parse(login.body) as { token: string }).token;
    const auth = ['-H', `authorization: Bearer ${token}`];
    curl([
      '--cacert',
      ca,
      ...auth,
      '-H',
      'content-type: application/json',
      '-d',
      '{"name":"bench"}',
      `${url}/api/v1/groups`,
    ]);
    const up = curl([
      '--cacert',
      ca,
      ...auth,
      '-X',
      'POST',
      '-H',
      'content-type: application/octet-stream',
      '-T',
      file,
      `${url}/api/v1/groups/bench/files?name=${tag}.bin`,
    ]);
    if (up.status !== 200) throw new Error(`upload answered ${up.status}: ${up.body}`);
    const id = (JSON.parse(up.body) as { file: { id: string } }).file.id;
    const down = curl([
      '--cacert',
      ca,
      ...auth,
      '-o',
      '/dev/null',
      `${url}/api/v1/groups/bench/files/${id}/content`,
    ]);
    if (down.status !== 200) throw new Error(`download answered ${down.status}`);
    return {
      upMBs: mbs(bytes, up.seconds),
      downMBs: mbs(bytes, down.seconds),
      peakRssMiB: await peakRssMiB(proc.pid!),
    };
  } finally {
    await stopProcess(proc);
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function benchNginx(
  work: string,
  file: string,
  bytes: number,
  cert: string,
  key: string,
): Promise<Run> {
  const dir = join(work, 'nginx');
  const root = join(dir, 'root');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await mkdir(root, { recursive: true });
  await writeFile(join(dir, 'cert.pem'), cert);
  await writeFile(join(dir, 'key.pem'), key, { mode: 0o600 });
  const port = await freePort();
  const conf = `daemon off;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  sendfile on;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    client_max_body_size 0;
    root ${root};
    location / { dav_methods PUT; create_full_put_path on; }
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const proc = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    const url = `https://127.0.0.1:${port}`;
    const ca = join(dir, 'cert.pem');
    for (let i = 0; i < 100; i++) {
      try {
        if (curl(['--cacert', ca, '-o', '/dev/null', `${url}/`]).status > 0) break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const up = curl(['--cacert', ca, '-T', file, `${url}/file.bin`]);
    if (up.status !== 201 && up.status !== 204) throw new Error(`nginx PUT answered ${up.status}`);
    const down = curl(['--cacert', ca, '-o', '/dev/null', `${url}/file.bin`]);
    if (down.status !== 200) throw new Error(`nginx GET answered ${down.status}`);
    return { upMBs: mbs(bytes, up.seconds), downMBs: mbs(bytes, down.seconds) };
  } finally {
    await stopProcess(proc);
  }
}

need('curl');
need('nginx');
const work = await mkdtemp(join(tmpdir(), 'shoal-bench-ud-'));
try {
  const big = join(work, 'big.bin');
  const small = join(work, 'small.bin');
  console.log(
    `# upload/download over loopback HTTPS: ${bigMiB} MiB (and ${smallMiB} MiB for RSS), curl as the client`,
  );
  await makeFile(big, bigMiB);
  await makeFile(small, smallMiB);

  const smallRun = await benchCoordinator(work, small, smallMiB * MiB, 'small');
  const bigRun = await benchCoordinator(work, big, bigMiB * MiB, 'big');
  // nginx gets the certificate the coordinator generated, so both sides pay for the same TLS.
  const certDir = join(work, 'coord-cert');
  await mkdir(certDir, { recursive: true });
  const certProc = await startCoordinator(certDir);
  await stopProcess(certProc.proc);
  const cert = await readFile(join(certDir, 'tls', 'cert.pem'), 'utf8');
  const key = await readFile(join(certDir, 'tls', 'key.pem'), 'utf8');
  const nginxRun = await benchNginx(work, big, bigMiB * MiB, cert, key);

  const f = (n: number) => n.toFixed(1).padStart(8);
  console.log('');
  console.log('                     upload MB/s  download MB/s');
  console.log(`coordinator         ${f(bigRun.upMBs)}     ${f(bigRun.downMBs)}`);
  console.log(`nginx + curl        ${f(nginxRun.upMBs)}     ${f(nginxRun.downMBs)}`);
  console.log(
    `ratio (coord/nginx) ${f(bigRun.upMBs / nginxRun.upMBs)}     ${f(bigRun.downMBs / nginxRun.downMBs)}`,
  );
  console.log('');
  console.log(
    `coordinator peak RSS: ${smallMiB} MiB file → ${smallRun.peakRssMiB?.toFixed(0)} MiB; ${bigMiB} MiB file → ${bigRun.peakRssMiB?.toFixed(0)} MiB`,
  );
  console.log(
    JSON.stringify({
      sizeMiB: bigMiB,
      coordinator: bigRun,
      nginx: nginxRun,
      ratio: { up: bigRun.upMBs / nginxRun.upMBs, down: bigRun.downMBs / nginxRun.downMBs },
      rss: { [smallMiB]: smallRun.peakRssMiB, [bigMiB]: bigRun.peakRssMiB },
    }),
  );
} finally {
  if (!values.keep) await rm(work, { recursive: true, force: true });
}
