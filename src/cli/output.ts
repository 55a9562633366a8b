/**
 * Everything the CLI prints goes through here: the injected io (so `main` runs in-process in tests), JSON
 * output for `--json`, tables (cli-table3), human sizes and dates, and progress reporting — a cli-progress bar
 * when stdout is a terminal, plain periodic lines on stderr otherwise, so logs never hold bar garbage.
 */
import Table from 'cli-table3';
import cliProgress from 'cli-progress';

/** A text sink like process.stdout. */
export interface TextSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** What the CLI needs from its process: streams, environment, and a signal that fires on SIGINT/SIGTERM. */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: Record<string, string | undefined>;
  /** Aborted when the user interrupts (Ctrl-C); long commands stop cleanly on it. */
  signal?: AbortSignal;
  /** Working directory for relative paths; defaults to process.cwd(). */
  cwd?: string;
}

/** Output of one command invocation. */
export interface Output {
  readonly json: boolean;
  readonly io: CliIo;
  /** A line on stdout (suppressed in --json mode, where only `result` prints). */
  line(text?: string): void;
  /** A note on stderr (always; never mixes with --json data on stdout). */
  note(text: string): void;
  /** The command's result: JSON in --json mode, else `human()` is called to print it. */
  result(value: unknown, human?: () => void): void;
  /** A table on stdout (human mode only). */
  table(head: string[], rows: (string | number)[][]): void;
}

export function createOutput(io: CliIo, json: boolean): Output {
  return {
    json,
    io,
    line(text = '') {
      if (!json) io.stdout.write(text + '\n');
    },
    note(text) {
      io.stderr.write(text + '\n');
    },
    result(value, human) {
      if (json) io.stdout.write(JSON.stringify(value, null, 2) + '\n');
      else human?.();
    },
    table(head, rows) {
      if (json) return;
      if (rows.length === 0) {
        io.stdout.write('(none)\n');
        return;
      }
      const t = new Table({
        head,
        style: { head: io.stdout.isTTY ? ['cyan'] : [], border: io.stdout.isTTY ? ['grey'] : [] },
      });
      for (const r of rows) t.push(r.map(String));
      io.stdout.write(t.toString() + '\n');
    },
  };
}

/** Bytes as a human size (binary units): `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** An ISO date as `YYYY-MM-DD HH:MM` (local time), or the input when it does not parse. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Reports transfer progress; call `update` as bytes move and `stop` at the end (also on failure). */
export interface Progress {
  update(doneBytes: number): void;
  stop(): void;
}

/** Interval of plain progress lines when not on a terminal, in ms. */
export const plainProgressIntervalMs = 2000;

/**
 * A progress reporter for `label` of `total` bytes: a bar on a terminal stdout (not in --json mode), else
 * a line on stderr at most every plainProgressIntervalMs and one at the end.
 */
export function createProgress(out: Output, label: string, total: number | undefined, startAt = 0): Progress {
  const started = Date.now();
  if (out.io.stdout.isTTY && !out.json) {
    const bar = new cliProgress.SingleBar(
      {
        stream: out.io.stdout as NodeJS.WritableStream,
        format: `${label} [{bar}] {percentage}% | {done}/{size} | {rate}`,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 30,
      },
      cliProgress.Presets.shades_classic,
    );
    const size = total ?? 0;
    const fields = (done: number) => ({
      done: formatBytes(done),
      size: total === undefined ? '?' : formatBytes(size),
      rate: `${formatBytes(Math.round((done - startAt) / Math.max(0.001, (Date.now() - started) / 1000)))}/s`,
    });
    bar.start(Math.max(size, 1), Math.min(startAt, size), fields(startAt));
    let stopped = false;
    return {
      update(done) {
        if (!stopped) bar.update(Math.min(done, Math.max(size, 1)), fields(done));
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  let last = started;
  let lastDone = startAt;
  const lineFor = (done: number) => {
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    const pct = total ? ` ${Math.floor((done / total) * 100)}%` : '';
    return `${label}:${pct} ${formatBytes(done)}${total !== undefined ? ' of ' + formatBytes(total) : ''}, ${formatBytes(Math.round((done - startAt) / secs))}/s`;
  };
  let stopped = false;
  return {
    update(done) {
      lastDone = done;
      const now = Date.now();
      if (now - last >= plainProgressIntervalMs) {
        last = now;
        out.note(lineFor(done));
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      out.note(lineFor(lastDone));
    },
  };
}
