// Throughput samples, for time estimates ("about 3 h 20 min at the speed of recent runs").
import type { Database } from 'better-sqlite3';
import { nowIso } from './checks.js';
import { CatalogError } from './errors.js';
import type { Catalog } from './types.js';

/** Runs an estimate looks back over: recent enough to follow a changed link, enough to smooth one odd run. */
export const THROUGHPUT_WINDOW = 10;
/** Samples kept per kind; older ones can never be in a window again. */
const KEEP_PER_KIND = 100;

export function throughputMethods(db: Database): Pick<Catalog, 'recordThroughput' | 'measuredThroughput'> {
  const insert = db.prepare<[string, number, number, string]>(`INSERT INTO throughput (kind, bytes, seconds, recorded_at) VALUES (?, ?, ?, ?)`);
  const prune = db.prepare<[string, string, number]>(
    `DELETE FROM throughput WHERE kind = ? AND id NOT IN (SELECT id FROM throughput WHERE kind = ? ORDER BY id DESC LIMIT ?)`,
  );
  // Total bytes over total seconds, not the mean of per-run speeds: a 2 s run dominated by
  // request latency must not count as much as a 2 h run when estimating a long upload.
  const measure = db.prepare<[string, number], { bytes: number | null; seconds: number | null }>(`
    SELECT SUM(bytes) AS bytes, SUM(seconds) AS seconds
    FROM (SELECT bytes, seconds FROM throughput WHERE kind = ? ORDER BY id DESC LIMIT ?)`);
  const record = db.transaction((kind: string, bytes: number, seconds: number) => {
    insert.run(kind, bytes, seconds, nowIso());
    prune.run(kind, kind, KEEP_PER_KIND);
  });

  return {
    recordThroughput({ bytes, seconds, kind }) {
      if (!Number.isFinite(bytes) || !Number.isFinite(seconds) || bytes < 0 || seconds < 0) {
        throw new CatalogError('InvalidInput', `throughput sample must have finite, non-negative bytes and seconds, got ${bytes} bytes in ${seconds} s`);
      }
      if (bytes === 0 || seconds === 0) return;
      record(kind, Math.round(bytes), seconds);
    },

    measuredThroughput(kind, window = THROUGHPUT_WINDOW) {
      const { bytes, seconds } = measure.get(kind, Math.max(1, Math.floor(window)))!;
      return bytes === null || seconds === null || seconds <= 0 ? undefined : bytes / seconds;
    },
  };
}
