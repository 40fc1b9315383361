// One large file up and down through each tool, BENCH_RUNS rounds. Every download is hashed
// against the source: a tool that is fast but wrong fails the bench. The tool order rotates
// each round so that none always runs first (cold RGW caches) or last.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { runMeasured, verifyFile } from '../measure.js';
import type { Tool } from '../peers.js';
import type { BenchBucket } from '../target.js';
import type { Measurement } from '../types.js';

export interface LargeFileOptions {
  tools: Tool[];
  bucket: BenchBucket;
  scratchDir: string;
  /** The source file and what every download must match. */
  source: { file: string; size: number; sha256: string };
  runs: number;
  log: (line: string) => void;
}

export const SCENARIO = 'large-file';

export async function largeFile(o: LargeFileOptions): Promise<Measurement[]> {
  const rows: Measurement[] = [];
  const mb = (m: Measurement) => (m.bytes / 1e6 / m.seconds).toFixed(0);
  for (let run = 1; run <= o.runs; run++) {
    const order = o.tools.map((_, i) => o.tools[(i + run - 1) % o.tools.length]!);
    for (const tool of order) {
      const key = `${SCENARIO}/${tool.name}/run-${run}.bin`;
      const copy = path.join(o.scratchDir, `download-${tool.name}.bin`);
      const row = (op: string, r: { seconds: number; peakRssBytes: number; stdout: string }): Measurement => ({
        scenario: SCENARIO,
        tool: tool.name,
        op,
        run,
        bytes: o.source.size,
        seconds: r.seconds,
        peakRssBytes: r.peakRssBytes,
        ...(tool.name === 'offsite' ? { detail: parseReport(r.stdout) } : {}),
      });

      const up = row('upload', await runMeasured(tool.upload(o.source.file, key), `${tool.name} upload`, o.scratchDir));
      rows.push(up);
      await rm(copy, { force: true });
      const down = row('download', await runMeasured(tool.download(key, copy), `${tool.name} download`, o.scratchDir));
      await verifyFile(copy, o.source, `${tool.name} download (run ${run})`);
      rows.push(down);
      await rm(copy, { force: true });
      await o.bucket.delete(key);
      o.log(`run ${run} ${tool.name.padEnd(8)} up ${mb(up)} MB/s  down ${mb(down)} MB/s  (sha256 ok)`);
    }
  }
  return rows;
}

/** `offsite --json put|get` prints one JSON document (size, etag, request counts). */
function parseReport(stdout: string): Record<string, unknown> | undefined {
  try {
    return stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
