import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Scratch, generateTicketKeys, makeTls, sampleFile, startHolder, ticketFor } from './helpers.ts';

const child = fileURLToPath(new URL('./fixtures/download-child.ts', import.meta.url));

interface Line {
  opened?: number;
  verified?: number;
  done?: string;
  result?: { piecesFetched: number; piecesResumed: number };
}

/** Runs the child downloader; `killWhen` decides (per line) to kill -9 it. Bounded by `timeoutMs`. */
function runChild(input: unknown, killWhen: (l: Line) => boolean, timeoutMs = 60_000): Promise<{ lines: Line[]; killed: boolean; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Line[] = [];
    let killed = false;
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`child timed out; stderr: ${stderr.slice(-2000)}`));
    }, timeoutMs);
    createInterface({ input: p.stdout }).on('line', (text) => {
      let l: Line;
      try {
        l = JSON.parse(text) as Line;
      } catch {
        return;
      }
      lines.push(l);
      if (!killed && killWhen(l)) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (!killed && code !== 0) reject(new Error(`child failed (${code}): ${stderr.slice(-2000)}`));
      else resolve({ lines, killed, code });
    });
  });
}

describe('resume after kill -9', () => {
  const scratch = new Scratch();
  after(() => scratch.cleanup());

  it('continues from the bitfield and fetches again at most the pieces in flight', async () => {
    const keys = generateTicketKeys();
    const tls = makeTls();
    const pieceSize = 64 * 1024;
    const pieces = 96;
    const streams = 4;
    const file = await sampleFile(scratch, pieces * pieceSize - 1000, pieceSize);
    // A holder capped at 2 MiB/s, so that the kill lands mid-download with bytes of several pieces in flight.
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file, options: { uploadBytesPerSecond: 2 * 1024 * 1024 } });
    const destDir = await scratch.dir();
    const input = { manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256), destDir, streams };

    const first = await runChild(input, (l) => (l.verified ?? 0) >= pieces / 3);
    assert.equal(first.killed, true, 'the first run was killed mid-download');
    const verifiedBeforeKill = Math.max(...first.lines.map((l) => l.verified ?? 0));

    const second = await runChild(input, () => false);
    const opened = second.lines.find((l) => l.opened !== undefined)?.opened ?? 0;
    const done = second.lines.find((l) => l.done);
    assert.ok(done?.done, 'the second run finished');
    // Every piece reported verified before the kill was on disk and is not fetched (nor hashed) again.
    assert.ok(opened >= verifiedBeforeKill, `resumed ${opened} pieces, ${verifiedBeforeKill} were verified before the kill`);
    assert.equal(done.result!.piecesResumed, opened);
    assert.equal(createHash('sha256').update(await readFile(done.done!)).digest('hex'), file.manifest.sha256);

    const refetched = h.served() - file.manifest.size;
    console.log(`# served ${h.served()} bytes for a ${file.manifest.size}-byte file: ${refetched} bytes fetched again (limit ${streams * pieceSize})`);
    assert.ok(refetched <= streams * pieceSize, `fetched again ${refetched} bytes, more than ${streams} pieces in flight`);
  });
});
