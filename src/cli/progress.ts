// A progress bar on stderr for long transfers: bytes, percentage, rate and time left. Drawn only
// on a terminal (never into logs or pipes) and at most ~8 times a second.
import { formatBytes, formatDuration } from './output.js';

export interface Progress {
  update(done: number): void;
  finish(): void;
}

/** Whether a bar is mid-line on stderr (an error message must start on a fresh line). */
let drawing = false;

/** Ends a half-drawn bar line, so what is printed next starts at the left margin. */
export function clearProgressLine(): void {
  if (drawing) process.stderr.write('\r\x1b[2K');
  drawing = false;
}

const silent: Progress = { update: () => undefined, finish: () => undefined };

export function progressBar(label: string, total: number | undefined, enabled: boolean): Progress {
  if (!enabled) return silent;
  const started = Date.now();
  let lastDraw = 0;
  let done = 0;
  const draw = (final: boolean) => {
    const now = Date.now();
    if (!final && now - lastDraw < 120) return;
    lastDraw = now;
    const seconds = Math.max((now - started) / 1000, 0.001);
    const rate = done / seconds;
    const width = 24;
    let bar = '';
    let tail = `${formatBytes(done)}  ${formatBytes(rate)}/s`;
    if (total && total > 0) {
      const frac = Math.min(done / total, 1);
      const filled = Math.round(frac * width);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% `;
      tail = `${formatBytes(done)}/${formatBytes(total)}  ${formatBytes(rate)}/s  ${final ? formatDuration(seconds) : `ETA ${formatDuration(rate > 0 ? (total - done) / rate : Infinity)}`}`;
    }
    process.stderr.write(`\r\x1b[2K${label} ${bar}${tail}${final ? '\n' : ''}`);
    drawing = !final;
  };
  return {
    update(n: number) {
      done = n;
      draw(false);
    },
    finish() {
      draw(true);
    },
  };
}

/** Progress is drawn on a terminal only, never with --json or --no-progress. */
export function progressWanted(opts: { json?: boolean; progress?: boolean }): boolean {
  if (opts.progress === false || opts.json) return false;
  return Boolean(process.stderr.isTTY);
}
