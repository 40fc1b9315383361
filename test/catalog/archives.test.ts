import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCatalogError, type BeginArchiveInput } from '../../src/catalog/index.js';
import { DEST, OTHER_DEST, beginInput, freshCatalog, sha } from './fixtures.js';

const result = { size: 1234, sha256: sha(1), etag: 'abc-2', fileCount: 2, sourceBytes: 4000 };

function code(c: string) {
  return (e: unknown) => isCatalogError(e) && e.code === c;
}

describe('archive lifecycle', () => {
  it('begin → uploadId → complete records every fact and clears the upload id', async () => {
    const catalog = await freshCatalog();
    const begun = catalog.beginArchive(beginInput());
    assert.equal(begun.status, 'uploading');
    assert.equal(begun.encrypted, true);
    assert.equal(begun.uploadId, null);
    assert.ok(begun.startedAt && !Number.isNaN(Date.parse(begun.startedAt)));

    catalog.setUploadId(begun.id, 'mpu-1');
    assert.equal(catalog.getArchive(DEST, begun.key)?.uploadId, 'mpu-1');

    const done = catalog.completeArchive(begun.id, result);
    assert.deepEqual(done, {
      ...begun,
      status: 'done',
      uploadId: null,
      size: 1234,
      sha256: sha(1),
      etag: 'abc-2',
      fileCount: 2,
      sourceBytes: 4000,
      completedAt: done.completedAt,
      manifestAuth: 'local',
    });
    assert.ok(done.completedAt! >= begun.startedAt!);
    assert.deepEqual(catalog.getArchive(DEST, begun.key), done);
    catalog.close();
  });

  it('findDoneArchive: the newest done archive of a session at a destination, whatever its key', async () => {
    const catalog = await freshCatalog();
    const sessionId = 'S1';
    assert.equal(catalog.findDoneArchive(DEST, sessionId), undefined);
    const plain = catalog.beginArchive(beginInput({ sessionId, key: 'S1.tar', encrypted: false, compression: 'none' }));
    catalog.completeArchive(plain.id, { ...result, manifestSha256: sha(7) });
    const found = catalog.findDoneArchive(DEST, sessionId)!;
    assert.deepEqual([found.key, found.manifestAuth, found.manifestSha256], ['S1.tar', 'local', sha(7)]);
    // Another upload of it under other settings, still running: the done one is the answer.
    const enc = catalog.beginArchive(beginInput({ sessionId, key: 'S1.tar.age' }));
    assert.equal(catalog.findDoneArchive(DEST, sessionId)?.key, 'S1.tar');
    await new Promise((r) => setTimeout(r, 5)); // completedAt has millisecond resolution
    catalog.completeArchive(enc.id, result);
    assert.equal(catalog.findDoneArchive(DEST, sessionId)?.key, 'S1.tar.age');
    assert.equal(catalog.findDoneArchive(OTHER_DEST, sessionId), undefined);
    catalog.close();
  });

  it('beginArchive on a done row throws AlreadyDone and leaves the row as it was', async () => {
    const catalog = await freshCatalog();
    const row = catalog.beginArchive(beginInput());
    const done = catalog.completeArchive(row.id, result);
    assert.throws(() => catalog.beginArchive(beginInput()), (e: unknown) => code('AlreadyDone')(e) && /force: true/.test((e as Error).message));
    assert.deepEqual(catalog.getArchive(DEST, row.key), done);
    catalog.close();
  });

  it('beginArchive with force restarts a done row from scratch, keeping its id', async () => {
    const catalog = await freshCatalog();
    const row = catalog.beginArchive(beginInput());
    catalog.completeArchive(row.id, result);
    catalog.recordVerify(row.id, true, 'head ok');
    const again = catalog.beginArchive(beginInput({ storageClass: 'GLACIER' }), { force: true });
    assert.equal(again.id, row.id);
    assert.equal(again.status, 'uploading');
    assert.equal(again.storageClass, 'GLACIER');
    for (const k of ['size', 'sha256', 'etag', 'fileCount', 'sourceBytes', 'completedAt', 'verifiedAt', 'verifyOk', 'verifyResult', 'uploadId', 'manifestSha256', 'manifestAuth'] as const) {
      assert.equal(again[k], null, k);
    }
    catalog.close();
  });

  it('failed rows show up in incompleteArchives with their upload id, and begin again resumes them', async () => {
    const catalog = await freshCatalog();
    const a = catalog.beginArchive(beginInput({ key: 'a.tar' }));
    const b = catalog.beginArchive(beginInput({ key: 'b.tar' }));
    const c = catalog.beginArchive(beginInput({ key: 'c.tar' }));
    catalog.beginArchive(beginInput({ key: 'elsewhere.tar', destination: OTHER_DEST }));
    catalog.setUploadId(a.id, 'mpu-a');
    catalog.failArchive(a.id, 'connection reset');
    catalog.completeArchive(c.id, result);

    const incomplete = catalog.incompleteArchives(DEST);
    assert.deepEqual(
      incomplete.map((r) => [r.key, r.status, r.uploadId, r.error]),
      [
        ['a.tar', 'failed', 'mpu-a', 'connection reset'],
        ['b.tar', 'uploading', null, null],
      ],
    );

    const resumed = catalog.beginArchive(beginInput({ key: 'a.tar' }));
    assert.equal(resumed.id, a.id);
    assert.equal(resumed.status, 'uploading');
    assert.equal(resumed.uploadId, 'mpu-a', 'the previous attempt’s upload id is kept so it can be resumed or aborted');
    assert.equal(resumed.error, null);
    assert.ok(resumed.startedAt! >= a.startedAt!);
    assert.equal(b.status, 'uploading');
    catalog.close();
  });

  it('refuses transitions that would lie about an archive', async () => {
    const catalog = await freshCatalog();
    const row = catalog.beginArchive(beginInput());
    catalog.failArchive(row.id, 'disk full');
    assert.throws(() => catalog.completeArchive(row.id, result), code('InvalidState'), 'a failed attempt cannot become done');
    assert.throws(() => catalog.recordVerify(row.id, true, 'ok'), code('InvalidState'), 'only done archives are verified');

    catalog.beginArchive(beginInput());
    catalog.completeArchive(row.id, result);
    assert.throws(() => catalog.completeArchive(row.id, result), code('AlreadyDone'));
    assert.throws(() => catalog.failArchive(row.id, 'late error'), code('AlreadyDone'), 'a done archive is never demoted');
    assert.throws(() => catalog.setUploadId(row.id, 'mpu'), code('AlreadyDone'));
    assert.equal(catalog.getArchive(DEST, row.key)?.status, 'done');

    for (const f of [() => catalog.setUploadId(999, null), () => catalog.failArchive(999, 'x'), () => catalog.completeArchive(999, result), () => catalog.recordVerify(999, true, '')]) {
      assert.throws(f, code('NotFound'));
    }
    catalog.close();
  });

  it('refuses values it must not store', async () => {
    const catalog = await freshCatalog();
    const row = catalog.beginArchive(beginInput());
    assert.throws(() => catalog.completeArchive(row.id, { ...result, sha256: 'ABC' }), code('InvalidInput'));
    assert.throws(() => catalog.completeArchive(row.id, { ...result, size: -1 }), code('InvalidInput'));
    assert.throws(() => catalog.completeArchive(row.id, { ...result, fileCount: 1.5 }), code('InvalidInput'));
    assert.equal(catalog.getArchive(DEST, row.key)?.status, 'uploading');
    // Secrets never reach the catalog.
    assert.throws(() => catalog.beginArchive(beginInput({ destination: 'https://user:hunter2@example.com/bucket' })), code('InvalidInput'));
    assert.throws(() => catalog.beginArchive(beginInput({ destination: 's3://b/p?X-Amz-Signature=abc' })), code('InvalidInput'));
    assert.throws(() => catalog.beginArchive(beginInput({ destination: 's3://b/p?secret_access_key=abc' })), code('InvalidInput'));
    assert.doesNotThrow(() => catalog.beginArchive(beginInput({ destination: '/var/backups/offsite', key: 'local.tar' })));
    catalog.close();
  });

  it('records verify results without touching the upload status', async () => {
    const catalog = await freshCatalog();
    const row = catalog.beginArchive(beginInput());
    catalog.completeArchive(row.id, result);
    catalog.recordVerify(row.id, false, 'size 12 differs from 1234');
    let got = catalog.getArchive(DEST, row.key)!;
    assert.equal(got.status, 'done');
    assert.equal(got.verifyOk, false);
    assert.equal(got.verifyResult, 'size 12 differs from 1234');
    assert.ok(got.verifiedAt);
    catalog.recordVerify(row.id, true, 'full ok');
    got = catalog.getArchive(DEST, row.key)!;
    assert.equal(got.verifyOk, true);
    assert.equal(got.verifyResult, 'full ok');
    catalog.close();
  });

  it('finds and lists archives by session, year, status and destination', async () => {
    const catalog = await freshCatalog();
    const add = (key: string, over: Partial<BeginArchiveInput>, finish: 'done' | 'failed' | 'uploading') => {
      const row = catalog.beginArchive(beginInput({ key, ...over }));
      if (finish === 'done') catalog.completeArchive(row.id, result);
      if (finish === 'failed') catalog.failArchive(row.id, 'boom');
      return row;
    };
    add('2023/b.tar', { sessionId: 'b', year: 2023 }, 'done');
    add('2023/a.tar', { sessionId: 'a', year: 2023 }, 'failed');
    add('2024/c.tar', { sessionId: 'c', year: 2024 }, 'done');
    add('2023/a.tar', { sessionId: 'a', year: 2023, destination: OTHER_DEST }, 'done');

    assert.deepEqual(catalog.listArchives().map((r) => `${r.key}@${r.destination === DEST ? 's3' : 'disk'}`), ['2023/a.tar@disk', '2023/a.tar@s3', '2023/b.tar@s3', '2024/c.tar@s3']);
    assert.deepEqual(catalog.listArchives({ year: 2023, destination: DEST }).map((r) => r.key), ['2023/a.tar', '2023/b.tar']);
    assert.deepEqual(catalog.listArchives({ status: 'done', destination: DEST }).map((r) => r.key), ['2023/b.tar', '2024/c.tar']);
    assert.deepEqual(catalog.listArchives({ status: 'pending' }), []);
    assert.deepEqual(catalog.findArchivesBySession('a').map((r) => [r.destination, r.status]), [
      [OTHER_DEST, 'done'],
      [DEST, 'failed'],
    ]);
    assert.equal(catalog.getArchive(DEST, 'nope'), undefined);
    catalog.close();
  });

  it('totals group by year and storage class, counting stored bytes of done archives only', async () => {
    const catalog = await freshCatalog();
    const add = (key: string, year: number, storageClass: string | null, size: number | 'failed' | 'uploading', destination = DEST) => {
      const row = catalog.beginArchive(beginInput({ key, year, storageClass, destination }));
      if (size === 'failed') catalog.failArchive(row.id, 'x');
      else if (size !== 'uploading') catalog.completeArchive(row.id, { ...result, size });
    };
    add('a', 2023, 'DEEP_ARCHIVE', 100);
    add('b', 2023, 'DEEP_ARCHIVE', 250);
    add('c', 2023, 'DEEP_ARCHIVE', 'failed');
    add('d', 2023, 'STANDARD', 7);
    add('e', 2024, 'DEEP_ARCHIVE', 'uploading');
    add('f', 2024, null, 5);
    add('g', 2022, 'GLACIER', 1000, OTHER_DEST);

    assert.deepEqual(catalog.totals(DEST), [
      { year: 2023, storageClass: 'DEEP_ARCHIVE', archives: 3, bytes: 350, done: 2, failed: 1 },
      { year: 2023, storageClass: 'STANDARD', archives: 1, bytes: 7, done: 1, failed: 0 },
      { year: 2024, storageClass: null, archives: 1, bytes: 5, done: 1, failed: 0 },
      { year: 2024, storageClass: 'DEEP_ARCHIVE', archives: 1, bytes: 0, done: 0, failed: 0 },
    ]);
    assert.deepEqual(catalog.totals()[0], { year: 2022, storageClass: 'GLACIER', archives: 1, bytes: 1000, done: 1, failed: 0 });
    assert.equal(catalog.totals().length, 5);
    assert.deepEqual(catalog.totals('s3://empty/bucket'), []);
    catalog.close();
  });

  it('calls after close fail loudly', async () => {
    const catalog = await freshCatalog();
    catalog.close();
    catalog.close();
    assert.throws(() => catalog.listArchives(), /not open/);
  });
});
