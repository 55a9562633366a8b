/**
 * Structured logging, injected everywhere as `deps.logger`. Each component asks for a child with its name
 * (`logger.child('agent:multicast')`). Lines are JSON on the given sink (stderr by default); hot paths log
 * at `trace`, which is off unless SHOAL_LOG=trace.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

const order: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: 99 };

export interface Logger {
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  component?: string;
  /** Where lines go; defaults to process.stderr. */
  write?: (line: string) => void;
}

/** A JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? ((process.env.SHOAL_LOG as LogLevel | undefined) ?? 'info');
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const component = options.component ?? 'shoal';
  const threshold = order[level] ?? order.info;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < threshold) return;
    const rec = { t: new Date().toISOString(), level: lvl, component, msg, ...fields };
    write(JSON.stringify(rec, (_k, v) => (v instanceof Error ? { message: v.message, code: (v as { code?: string }).code } : v)) + '\n');
  };
  return {
    level,
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (name) => createLogger({ level, write, component: name }),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = createLogger({ level: 'silent' });
