// A hostile bucket against restore(): a gzip bomb (2 MB that inflates to 2 GiB) put in place of a
// snapshot's object on the real RGW, with the recorded metadata kept, or rewritten to match the
// bomb. Each is refused fast, with exit code 8 from the CLI, and never inflated whole.
import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isSnapshotError, restore, snapshot, verifySnapshot, type Storage } from '../../src/index.js';
import { runCli } from '../support/cli.js';
import { sha256 } from '../support/data.js';
import { createTestBucket, openTestS3, s3ChildEnv, s3Url } from '../support/env.js';

const GIB = 1024 ** 3;
/** Inflating the whole bomb took about 10 s here; a refusal must not come near that. */
const FAST_MS = 1500;

/** 32 gzip members of 64 MiB of zeros each: one 2 MB object that inflates to 2 GiB. */
function gzipBomb(): Buffer {
  const member = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
  return Buffer.concat(Array.from({ length: (2 * GIB) / (64 * 1024 * 1024) }, () => member));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T | undefined; error: unknown }> {
  const t0 = performance.now();
  try {
    const result = await fn();
    return { ms: performance.now() - t0, result, error: undefined };
  } catch (error) {
    return { ms: performance.now() - t0, result: undefined, error };
  }
}

describe('snapshot restore against a gzip bomb on RGW', () => {
  let storage: Storage;
  let url: string;
  let bomb: Buffer;
  before(async () => {
    const bucket = await createTestBucket('snapbomb');
    Object.assign(process.env, s3ChildEnv());
    storage = openTestS3(bucket, { prefix: 'snaps/' });
    url = s3Url(bucket, 'snaps/');
    bomb = gzipBomb();
    assert.ok(bomb.length < 3 * 1024 * 1024, `the bomb is ${bomb.length} bytes`);
  });
  after(() => storage.close());

  /** A real snapshot at `key`, then its object replaced by the bomb with `metadata(real)`. */
  async function plant(key: string, metadata: (real: Record<string, string>) => Record<string, string>): Promise<void> {
    await snapshot({ balance: 100, note: 'the real state' }, key, { storage: url });
    const real = (await storage.head(`${key}.json.gz`)).metadata;
    await storage.put(`${key}.json.gz`, bomb, { metadata: metadata(real), contentType: 'application/gzip' });
  }

  async function refusedFast(key: string, reason: RegExp): Promise<void> {
    const r = await timed(() => restore(key, { storage: url }));
    process.stderr.write(`# ${key}: restore refused in ${r.ms.toFixed(0)} ms\n`);
    assert.equal(r.result, undefined, 'no value returned');
    assert.ok(isSnapshotError(r.error, 'SnapshotCorrupted'), `SnapshotCorrupted, got ${String(r.error)}`);
    assert.match((r.error as Error).message, reason);
    assert.ok(r.ms < FAST_MS, `refused in ${r.ms.toFixed(0)} ms, not after inflating 2 GiB`);
    const v = await timed(() => verifySnapshot(key, { storage: url }));
    process.stderr.write(`# ${key}: verify answered in ${v.ms.toFixed(0)} ms\n`);
    assert.equal(v.error, undefined, String(v.error));
    assert.equal(v.result?.ok, false);
    assert.ok(v.ms < FAST_MS, `verify answered in ${v.ms.toFixed(0)} ms`);
  }

  it('the object replaced, its metadata kept: refused by the stored size before a byte is inflated', async () => {
    await plant('kept', (real) => real);
    await refusedFast('kept', /stored object is \d+ bytes, \d+ recorded/);
  });

  it('stored-size and stored-sha256 rewritten to match the bomb: inflation stops at the recorded JSON size', async () => {
    await plant('forged', (real) => ({ ...real, 'stored-size': String(bomb.length), 'stored-sha256': sha256(bomb) }));
    await refusedFast('forged', /inflates to more than the recorded \d+ bytes/);
  });

  it('every field forged, the JSON size as 2 GiB: refused up front, more than a JSON text Node can parse', async () => {
    await plant('all-forged', (real) => ({ ...real, size: String(2 * GIB), 'stored-size': String(bomb.length), 'stored-sha256': sha256(bomb) }));
    await refusedFast('all-forged', /records 2147483648 bytes of JSON, more than/);
  });

  it('without stored-size and stored-sha256 (an object written by hand): still bounded by the JSON size', async () => {
    await plant('unrecorded', (real) => {
      const { 'stored-size': _size, 'stored-sha256': _hash, ...rest } = real;
      return rest;
    });
    await refusedFast('unrecorded', /stored object is \d+ bytes, more than a gzip of \d+ bytes can be|inflates to more than/);
  });

  it('such a snapshot without stored-* metadata is still restored when it is intact', async () => {
    await snapshot({ old: true }, 'old-format', { storage: url });
    const got = await storage.get('old-format.json.gz');
    const bytes = Buffer.concat(await got.body.toArray());
    const { 'stored-size': _size, 'stored-sha256': _hash, ...rest } = got.info.metadata;
    await storage.put('old-format.json.gz', bytes, { metadata: rest, contentType: 'application/gzip' });
    assert.deepEqual(await restore('old-format', { storage: url }), { old: true });
    assert.equal((await verifySnapshot('old-format', { storage: url })).ok, true);
  });

  it('offsite snapshot restore and verify: exit 8, no value printed, fast', async () => {
    await plant('cli', (real) => ({ ...real, 'stored-size': String(bomb.length), 'stored-sha256': sha256(bomb) }));
    const t0 = performance.now();
    const r = await runCli(['snapshot', '--storage', url, 'restore', 'cli'], { env: s3ChildEnv() });
    const ms = performance.now() - t0;
    process.stderr.write(`# offsite snapshot restore of the bomb: exit ${r.code} after ${ms.toFixed(0)} ms (the whole process)\n`);
    assert.equal(r.code, 8, r.stderr);
    assert.equal(r.stdout, '', 'no value printed');
    assert.match(r.stderr, /corrupted/);
    assert.ok(ms < FAST_MS + 3000, `the whole command took ${ms.toFixed(0)} ms`);
    const v = await runCli(['snapshot', '--storage', url, 'verify', 'cli'], { env: s3ChildEnv() });
    assert.equal(v.code, 8, v.stdout + v.stderr);
    assert.match(v.stdout, /^FAIL/);
  });
});
