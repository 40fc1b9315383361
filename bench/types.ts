// Shared shapes of the benchmark: where it runs (an S3 target), what one measurement is, and
// what a scenario gets to work with. New scenarios (a tree of files, database backups) add a
// file under bench/scenarios/ that returns Measurement rows; report.ts prints any of them.

/** An S3-compatible server and a bucket the bench may fill and empty. */
export interface S3Target {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** One timed operation of one tool. */
export interface Measurement {
  scenario: string;
  /** "offsite", "aws-cli", "rclone", or a variant such as "offsite p32/c8". */
  tool: string;
  /** "upload", "download", "backup", ... */
  op: string;
  /** 1-based round number (BENCH_RUNS rounds). */
  run: number;
  /** Payload bytes moved. */
  bytes: number;
  /** Wall time of the whole tool process, start-up included. */
  seconds: number;
  /** Peak resident set of the tool process (ru_maxrss via /usr/bin/time). */
  peakRssBytes: number;
  /** Settings that distinguish this row (part size, concurrency, ...). */
  config?: Record<string, string | number>;
  /** Anything the tool reported about itself (Offsite: in-process seconds, request counts). */
  detail?: Record<string, unknown>;
}

/** A tool or check failed: the bench exits non-zero (a MISS on a target does not). */
export class BenchFailure extends Error {
  override name = 'BenchFailure';
}
