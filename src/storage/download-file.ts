/**
 * An object into a file with ranged GETs in parallel, each range written at its offset as its
 * bytes arrive: no reassembly buffer, so memory stays at the ranges' read-ahead whatever the
 * size. Every range is pinned to the ETag the HEAD saw (two versions are never spliced) and
 * resumes on its own after a dropped connection (the adapter's get() does that). The file is
 * the caller's to name: it must not exist yet (it is created 0600, O_EXCL, never through a link).
 */
import { setMaxListeners } from 'node:events';
import { openNewPrivateFile, writeGathered } from '../files/index.js';
import type { ObjectInfo, Storage } from './types.js';

export interface DownloadToFileOptions {
  /** Bytes per ranged GET (default 8 MiB, aws-cli's). */
  partSize?: number;
  /** Ranged GETs in flight (default 4, rclone's: see docs/bench.md). 1: one GET of the whole object. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called with the running count of bytes written. */
  onProgress?: (bytes: number) => void;
  /** The object's HEAD, when the caller has made it already (its ETag pins every range). */
  info?: ObjectInfo;
}

export const DEFAULT_DOWNLOAD_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_CONCURRENCY = 4;

export async function downloadToFile(storage: Storage, key: string, file: string, opts: DownloadToFileOptions = {}): Promise<{ info: ObjectInfo; parts: number }> {
  const partSize = opts.partSize ?? DEFAULT_DOWNLOAD_PART_SIZE;
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_DOWNLOAD_CONCURRENCY);
  const signal = opts.signal;
  const info = opts.info ?? (await storage.head(key, signal ? { signal } : {}));
  const ranges: Array<{ start: number; end: number }> = [];
  for (let start = 0; start < info.size; start += partSize) ranges.push({ start, end: Math.min(info.size, start + partSize) - 1 });
  // One GET of the whole object when asked for, or when there is at most one range anyway.
  const single = concurrency === 1 || ranges.length <= 1;
  // A new file, private whatever the umask (the object may be anyone's data), never written
  // through a link planted at its name: anything already there is refused (EEXIST).
  const fh = await openNewPrivateFile(file);
  let written = 0;
  try {
    if (single) {
      await writeRange(undefined);
    } else {
      let next = 0;
      const failed = new AbortController();
      const inner = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
      // Each range in flight listens on it (the SDK's request, the resuming body): Node warns of
      // a leak past 10 listeners, which 8 ranges in flight reach.
      setMaxListeners(Math.max(10, concurrency * 4), inner);
      await Promise.all(
        Array.from({ length: Math.min(concurrency, ranges.length) }, async () => {
          try {
            while (next < ranges.length && !inner.aborted) await writeRange(ranges[next++]!, inner);
          } catch (e) {
            failed.abort(e); // the other ranges stop too: the download has failed
            throw e;
          }
        }),
      );
    }
    if (written !== info.size) throw new Error(`download of ${key} ended early: ${written} of ${info.size} bytes; try again`);
    return { info, parts: single ? 1 : ranges.length };
  } finally {
    await fh.close();
  }

  /**
   * One GET (a range, or the whole object), its chunks written at their offsets in arrival order,
   * gathered into positioned writes of about 1 MiB (writeGathered).
   */
  async function writeRange(range: { start: number; end: number } | undefined, rangeSignal = signal): Promise<void> {
    const got = await storage.get(key, { ifMatch: info.etag, ...(range ? { range } : {}), ...(rangeSignal ? { signal: rangeSignal } : {}) });
    const received = await writeGathered(fh, got.body as AsyncIterable<Buffer>, {
      position: range?.start ?? 0,
      onWritten: (n) => {
        written += n;
        opts.onProgress?.(written);
      },
    });
    const expected = range ? range.end - range.start + 1 : info.size;
    if (received !== expected) throw new Error(`download of ${key}: a range ended after ${received} of ${expected} bytes; try again`);
  }
}
