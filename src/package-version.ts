/**
 * The version in package.json, for `--version`, the coordinator's /health answer and the agent's hello; read
 * once per call from the file next to src/ so no build step has to stamp it.
 */
import { readFileSync } from 'node:fs';

/** The `version` field of package.json; '0.0.0' when the file is missing or unreadable. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
