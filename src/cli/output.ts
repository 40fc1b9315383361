// How the CLI presents results: human text by default, one JSON document with --json.
export interface GlobalOptions {
  json?: boolean;
  debug?: boolean;
  progress?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One JSON document on one line: for commands that also stream JSON events (NDJSON). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Status messages go to stderr, so stdout stays clean for data (cat, get -). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mmss = `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/** "k=v" pairs from repeated options into a record; a pair without "=" is a usage error. */
export function parsePairs(pairs: string[] | undefined, what: string): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`${what} "${p}" must look like name=value`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** Bad command-line input (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A command that failed after doing part of its work: `code` picks the exit code (exit-codes.ts),
 * and `details` go into the --json error object beside code and message (say, the local copy a
 * backup kept when its upload failed).
 */
export class CommandFailure extends Error {
  override name = 'CommandFailure';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
  }
}
