// The snapshot API on both stores it supports: a local directory and S3 (the real Ceph RGW of
// `npm test`). Corruption tests rewrite stored bytes under the recorded metadata and expect the
// value to be refused, never returned.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  deleteSnapshot,
  getMetadata,
  isSnapshotError,
  isStorageError,
  listSnapshots,
  LocalStorage,
  restore,
  snapshot,
  snapshotExists,
  verifySnapshot,
  SnapshotIntegrityError,
  SnapshotNotFoundError,
  type SnapshotLocation,
  type Storage,
} from '../../src/index.js';
import { readAll, sha256 } from '../support/data.js';
import { createTestBucket, openTestS3, s3ChildEnv, s3TestServer, s3Url, tempDir } from '../support/env.js';

const state = {
  agent: 'planner',
  step: 42,
  memory: ['première note', 'second: ✓', { nested: { deep: [1, 2.5, null, true] } }],
  empty: {},
};

/** Rewrites the stored object with `bytes` while keeping the recorded snapshot metadata. */
async function tamper(storage: Storage, objectKey: string, change: (stored: Buffer) => Buffer): Promise<void> {
  const got = await storage.get(objectKey);
  const stored = await readAll(got.body);
  await storage.put(objectKey, change(stored), { metadata: got.info.metadata, contentType: 'application/gzip' });
}

function snapshotSuite(name: string, open: () => Promise<{ storage: Storage; location: () => SnapshotLocation }>) {
  describe(`snapshots on ${name}`, () => {
    let storage: Storage;
    let at: () => SnapshotLocation;
    before(async () => {
      ({ storage, location: at } = await open());
    });
    after(() => storage.close());

    it('round-trips a value and records its metadata', async () => {
      const meta = await snapshot(state, 'agents/planner/latest', { ...at(), agentId: 'planner', sessionId: 's-1', description: 'after step 42 — ok ✓' });
      const json = JSON.stringify(state);
      assert.equal(meta.key, 'agents/planner/latest');
      assert.equal(meta.objectKey, 'agents/planner/latest.json.gz');
      assert.equal(meta.size, Buffer.byteLength(json));
      assert.equal(meta.sha256, sha256(json));
      assert.ok(Math.abs(Date.parse(meta.createdAt) - Date.now()) < 60_000, `createdAt ${meta.createdAt}`);
      assert.deepEqual(await restore('agents/planner/latest', at()), state);

      const head = await getMetadata('agents/planner/latest', at());
      assert.equal(head.agentId, 'planner');
      assert.equal(head.sessionId, 's-1');
      assert.equal(head.description, 'after step 42 — ok ✓');
      assert.equal(head.sha256, meta.sha256);
      assert.equal(head.createdAt, meta.createdAt);
      assert.equal(head.storedSize, meta.storedSize);
      assert.equal(head.storedSha256, meta.storedSha256);
    });

    it('stores plain gzip JSON that any tool can read', async () => {
      await snapshot(state, 'plain', at());
      const stored = await readAll((await storage.get('plain.json.gz')).body);
      assert.deepEqual(JSON.parse(gunzipSync(stored).toString('utf8')), state);
      assert.equal(sha256(stored), (await getMetadata('plain', at())).storedSha256);
    });

    it('replaces a snapshot at the same key', async () => {
      await snapshot({ v: 1 }, 'replace/me', at());
      await snapshot({ v: 2 }, 'replace/me', at());
      assert.deepEqual(await restore('replace/me', at()), { v: 2 });
    });

    it('round-trips strings, numbers, null and arrays', async () => {
      for (const [i, v] of (['text', 0, -1.5e300, null, [], [1, 'two'], true] as unknown[]).entries()) {
        await snapshot(v, `scalars/${i}`, at());
        assert.deepEqual(await restore(`scalars/${i}`, at()), v);
      }
    });

    it('verifySnapshot reports a healthy snapshot', async () => {
      await snapshot(state, 'verify/ok', at());
      const v = await verifySnapshot('verify/ok', at());
      assert.equal(v.ok, true);
      assert.equal(v.expectedSha256, sha256(JSON.stringify(state)));
      assert.equal(v.actualSha256, v.expectedSha256);
      assert.equal(v.error, undefined);
    });

    it('a flipped byte is reported as corruption and the value is never returned', async () => {
      await snapshot(state, 'corrupt/flip', at());
      await tamper(storage, 'corrupt/flip.json.gz', (b) => {
        const c = Buffer.from(b);
        c[Math.floor(c.length / 2)]! ^= 0xff;
        return c;
      });
      await assert.rejects(restore('corrupt/flip', at()), (e: unknown) => {
        assert.ok(e instanceof SnapshotIntegrityError, `got ${String(e)}`);
        assert.equal(e.code, 'SnapshotCorrupted');
        assert.equal(e.key, 'corrupt/flip');
        assert.match(e.message, /corrupt/);
        return true;
      });
      const v = await verifySnapshot('corrupt/flip', at());
      assert.equal(v.ok, false);
      assert.match(v.error ?? '', /corrupted/);
    });

    it('valid gzip of different JSON fails the SHA-256 check', async () => {
      await snapshot({ balance: 100 }, 'corrupt/swap', at());
      await tamper(storage, 'corrupt/swap.json.gz', () => gzipSync(JSON.stringify({ balance: 999 })));
      await assert.rejects(restore('corrupt/swap', at()), (e: unknown) => isSnapshotError(e, 'SnapshotCorrupted') && /SHA-256 mismatch/.test(e.message));
      const v = await verifySnapshot('corrupt/swap', at());
      assert.equal(v.ok, false);
      assert.equal(v.actualSha256, sha256(JSON.stringify({ balance: 999 })));
    });

    it('a truncated object is corruption', async () => {
      await snapshot(state, 'corrupt/cut', at());
      await tamper(storage, 'corrupt/cut.json.gz', (b) => b.subarray(0, b.length - 9));
      await assert.rejects(restore('corrupt/cut', at()), (e: unknown) => isSnapshotError(e, 'SnapshotCorrupted'));
    });

    it('an object without snapshot metadata is refused, not trusted', async () => {
      await storage.put('foreign.json.gz', gzipSync('{"a":1}'));
      await assert.rejects(restore('foreign', at()), (e: unknown) => isSnapshotError(e, 'NotASnapshot'));
      assert.equal((await verifySnapshot('foreign', at())).ok, false);
    });

    it('missing snapshots: NotFound, exists false, delete false', async () => {
      await assert.rejects(restore('nope', at()), (e: unknown) => {
        assert.ok(e instanceof SnapshotNotFoundError);
        assert.ok(isStorageError(e, 'NotFound'));
        assert.match(e.message, /no snapshot "nope"/);
        return true;
      });
      await assert.rejects(getMetadata('nope', at()), (e: unknown) => isStorageError(e, 'NotFound'));
      assert.equal(await snapshotExists('nope', at()), false);
      assert.equal(await deleteSnapshot('nope', at()), false);
    });

    it('exists, delete, list', async () => {
      await snapshot({ a: 1 }, 'list/a', at());
      await snapshot({ b: 1 }, 'list/b', at());
      await snapshot({ c: 1 }, 'list/sub/c', at());
      await storage.put('list/not-a-snapshot.txt', 'x');
      assert.equal(await snapshotExists('list/a', at()), true);
      assert.deepEqual((await listSnapshots({ ...at(), prefix: 'list/' })).map((e) => e.key), ['list/a', 'list/b', 'list/sub/c']);
      assert.equal(await deleteSnapshot('list/a', at()), true);
      assert.equal(await snapshotExists('list/a', at()), false);
      assert.deepEqual((await listSnapshots({ ...at(), prefix: 'list/' })).map((e) => e.key), ['list/b', 'list/sub/c']);
    });

    it('refuses bad input before touching storage', async () => {
      const before = storage.stats().totalRequests;
      await assert.rejects(snapshot(1n, 'bad/bigint', at()), (e: unknown) => isSnapshotError(e, 'NotSerializable'));
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await assert.rejects(snapshot(cyclic, 'bad/cycle', at()), (e: unknown) => isSnapshotError(e, 'NotSerializable'));
      await assert.rejects(snapshot(undefined, 'bad/undef', at()), (e: unknown) => isSnapshotError(e, 'NotSerializable'));
      for (const key of ['', '../escape', 'a//b', '/abs', 'dir/', 'tab\there']) {
        await assert.rejects(snapshot({}, key, at()), (e: unknown) => isSnapshotError(e, 'InvalidSnapshotKey'), key);
      }
      await assert.rejects(snapshot({}, 'bad/meta', { ...at(), description: 'é'.repeat(1000) }), (e: unknown) => isSnapshotError(e, 'SnapshotMetadataTooLarge') && /2048/.test(e.message));
      assert.equal(storage.stats().totalRequests, before, 'no request was made');
      assert.equal(await snapshotExists('bad/meta', at()), false);
    });
  });
}

snapshotSuite('a local directory', async () => {
  const dir = await tempDir('offsite-snap-');
  return { storage: new LocalStorage(dir), location: () => ({ directory: dir }) };
});

snapshotSuite('S3 (Ceph RGW), selected by URL', async () => {
  const bucket = await createTestBucket('snap');
  Object.assign(process.env, s3ChildEnv());
  return { storage: openTestS3(bucket, { prefix: 'snaps/' }), location: () => ({ storage: s3Url(bucket, 'snaps/') }) };
});

describe('choosing where snapshots go', () => {
  it('defaults to .offsite/snapshots under the working directory', async () => {
    const dir = await tempDir();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      delete process.env.OFFSITE_SNAPSHOT_URL;
      await snapshot({ here: true }, 'default-place');
      assert.ok(existsSync(path.join(dir, '.offsite/snapshots/default-place.json.gz')));
      assert.deepEqual(await restore('default-place'), { here: true });
    } finally {
      process.chdir(cwd);
    }
  });

  it('OFFSITE_SNAPSHOT_URL switches the same code to S3', async () => {
    const bucket = await createTestBucket('snapenv');
    Object.assign(process.env, s3ChildEnv());
    process.env.OFFSITE_SNAPSHOT_URL = s3Url(bucket, 'from-env');
    try {
      await snapshot({ via: 'env' }, 'switched');
      assert.deepEqual(await restore('switched'), { via: 'env' });
    } finally {
      delete process.env.OFFSITE_SNAPSHOT_URL;
    }
    const s3 = openTestS3(bucket);
    assert.equal((await s3.head('from-env/switched.json.gz')).metadata['offsite-snapshot'], '1');
    await s3.close();
  });

  it("options { storage: 's3', bucket, region, endpoint } select S3, readable by the aws CLI", async () => {
    const bucket = await createTestBucket('snapopts');
    const server = s3TestServer();
    const opts = {
      storage: 's3' as const,
      bucket,
      region: 'us-east-1',
      endpoint: server.endpoint,
      prefix: 'agents',
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    };
    const meta = await snapshot(state, 'a1/state', { ...opts, agentId: 'a1' });
    assert.equal((await getMetadata('a1/state', opts)).agentId, 'a1');
    // Debian's aws CLI, with no Offsite code involved, gets back the same JSON.
    const stored = execFileSync('aws', ['--endpoint-url', server.endpoint, 's3', 'cp', `s3://${bucket}/agents/a1/state.json.gz`, '-'], {
      env: { ...process.env, ...s3ChildEnv(), AWS_CA_BUNDLE: '' },
    });
    assert.equal(sha256(stored), meta.storedSha256);
    assert.deepEqual(JSON.parse(gunzipSync(stored).toString('utf8')), state);
  });

  it('a bucket without storage: "s3" is a clear error', async () => {
    await assert.rejects(snapshot({}, 'k', { bucket: 'b' }), (e: unknown) => isSnapshotError(e, 'InvalidSnapshotOptions') && /storage: "s3"/.test(e.message));
    await assert.rejects(snapshot({}, 'k', { storage: 's3' }), (e: unknown) => isSnapshotError(e, 'InvalidSnapshotOptions') && /bucket/.test(e.message));
  });
});
