// How the bench runs Offsite: the same Tool shape as the peers, one transfer per process, and
// the program a user runs: the compiled `bin/offsite put` / `get` (npm run bench builds dist/
// first), so start-up time and peak RSS are measured the same way as for aws-cli and rclone.
// bench/offsite-transfer.ts stays for diagnosis (down-raw, down-ranged) under tsx.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './measure.js';
import { cleanEnv, withNodeOnPath, type Tool } from './peers.js';
import type { S3Target } from './types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'offsite');

/**
 * The query of an Offsite destination URL on the bench's server: endpoint and region, and the
 * part size and concurrency from BENCH_PART_SIZE_MIB / BENCH_CONCURRENCY when set (to try other
 * settings; unset: Offsite's defaults). Shared by large-file and archive-tree.
 */
export function offsiteUrlQuery(target: S3Target): string {
  const query = new URLSearchParams({ endpoint: target.endpoint, region: target.region });
  if (process.env.BENCH_PART_SIZE_MIB) query.set('part_size', process.env.BENCH_PART_SIZE_MIB);
  if (process.env.BENCH_CONCURRENCY) query.set('concurrency', process.env.BENCH_CONCURRENCY);
  return decodeURIComponent(query.toString());
}

export function offsite(target: S3Target): Tool {
  // Credentials through the SDK's default chain, as a user would run it.
  const env = cleanEnv({
    AWS_ACCESS_KEY_ID: target.accessKeyId,
    AWS_SECRET_ACCESS_KEY: target.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  const url = (key: string) => `s3://${target.bucket}/${key}?${offsiteUrlQuery(target)}`;
  const run = (args: string[]): Command => ({ cmd: bin, args: ['--json', '--no-progress', ...args], env: withNodeOnPath(env), cwd: root });
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return {
    name: 'offsite',
    version: `offsite ${version} (Node ${process.version})`,
    upload: (file, key) => run(['put', file, url(key)]),
    download: (key, file) => run(['get', '--force', url(key), file]),
  };
}
