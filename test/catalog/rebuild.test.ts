import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manifestKeyFor, openCatalog, type ArchiveManifest, type ArchiveRow, type Catalog } from '../../src/catalog/index.js';
import { DEST, OTHER_DEST, beginInput, catalogFile, freshCatalog, manifest, sha } from './fixtures.js';

/** What the archive engine does for one session: catalog rows and the manifest it uploads. */
function archive(catalog: Catalog, n: number, over: { year?: number; storageClass?: string; encrypted?: boolean; destination?: string } = {}): { row: ArchiveRow; manifest: ArchiveManifest } {
  const key = `${over.year ?? 2024}/session-${n}.tar${over.encrypted === false ? '.gz' : '.gz.age'}`;
  const storageClass = over.storageClass ?? 'DEEP_ARCHIVE';
  const begun = catalog.beginArchive(
    beginInput({ sessionId: `session-${n}`, year: over.year ?? 2024, key, manifestKey: manifestKeyFor(key), encrypted: over.encrypted ?? true, storageClass, destination: over.destination ?? DEST }),
  );
  catalog.setUploadId(begun.id, `mpu-${n}`);
  const m = manifest({
    sessionId: `session-${n}`,
    year: over.year ?? 2024,
    key,
    encryption: over.encrypted === false ? null : manifest().encryption,
    object: { size: 1000 + n, sha256: sha(n), etag: `etag-${n}`, storageClass },
    source: { root: `/data/session-${n}`, files: n, bytes: 10_000 * n },
  });
  const row = catalog.completeArchive(begun.id, { size: m.object.size, sha256: m.object.sha256, etag: m.object.etag, fileCount: m.source.files, sourceBytes: m.source.bytes });
  return { row, manifest: { ...m, createdAt: row.completedAt! } };
}

/** The fields a manifest carries: everything but the catalog's own bookkeeping. */
function facts(r: ArchiveRow): Partial<ArchiveRow> {
  const { id: _id, startedAt: _s, verifiedAt: _v, verifyOk: _o, verifyResult: _r, manifestAuth: _a, manifestSha256: _m, ...rest } = r;
  return rest;
}

describe('rebuildFromManifests', () => {
  it('recreates in an empty catalog the rows that were recorded', async () => {
    const original = await freshCatalog();
    const made = [archive(original, 1), archive(original, 2, { year: 2023, storageClass: 'GLACIER' }), archive(original, 3, { encrypted: false })];
    const recorded = original.listArchives({ destination: DEST });
    const totals = original.totals(DEST);
    original.close();

    const rebuilt = await freshCatalog();
    const result = rebuilt.rebuildFromManifests(DEST, made.map((m) => m.manifest));
    assert.deepEqual(result, { archives: 3, removed: 0, keptIncomplete: 0 });
    const rows = rebuilt.listArchives({ destination: DEST });
    assert.deepEqual(rows.map(facts), recorded.map(facts));
    assert.ok(rows.every((r) => r.startedAt === null && r.verifiedAt === null));
    // Nothing said the manifests were authenticated: the rows say so.
    assert.ok(recorded.every((r) => r.manifestAuth === 'local'));
    assert.deepEqual(rows.map((r) => r.manifestAuth), ['unsigned', 'unsigned', 'unsigned']);
    assert.deepEqual(rebuilt.totals(DEST), totals);
    rebuilt.close();
  });

  it('over an existing catalog: rows equal to what was recorded, ids and local history kept', async () => {
    const catalog = await freshCatalog();
    const a = archive(catalog, 1);
    const b = archive(catalog, 2);
    catalog.recordVerify(a.row.id, true, 'full ok');
    const before = catalog.listArchives();
    const result = catalog.rebuildFromManifests(DEST, [a.manifest, b.manifest]);
    assert.deepEqual(result, { archives: 2, removed: 0, keptIncomplete: 0 });
    assert.deepEqual(catalog.listArchives(), before);
    catalog.close();
  });

  it('makes the destination match the bucket: stale done rows go, changed objects are replaced, other destinations untouched', async () => {
    const catalog = await freshCatalog();
    const kept = archive(catalog, 1);
    const gone = archive(catalog, 2);
    const changed = archive(catalog, 3);
    catalog.recordVerify(changed.row.id, true, 'head ok');
    const elsewhere = archive(catalog, 4, { destination: OTHER_DEST });
    // An upload in progress has no manifest yet; its upload id is still needed to abort it.
    const running = catalog.beginArchive(beginInput({ key: 'in-progress.tar' }));
    catalog.setUploadId(running.id, 'mpu-running');
    // Killed after writing the manifest but before completeArchive: the manifest wins.
    const unfinished = catalog.beginArchive(beginInput({ key: 'unfinished.tar', sessionId: 'u' }));
    catalog.setUploadId(unfinished.id, 'mpu-unfinished');
    const unfinishedManifest = manifest({ key: 'unfinished.tar', sessionId: 'u', object: { size: 5, sha256: sha(5), etag: 'e5', storageClass: 'DEEP_ARCHIVE' } });
    const reuploaded = { ...changed.manifest, object: { ...changed.manifest.object, size: 42, sha256: sha(42), etag: 'new' }, createdAt: '2030-01-01T00:00:00.000Z' };

    const result = catalog.rebuildFromManifests(DEST, [kept.manifest, reuploaded, { manifest: unfinishedManifest, manifestKey: 'custom/unfinished.json' }]);
    assert.deepEqual(result, { archives: 3, removed: 1, keptIncomplete: 1 });

    assert.deepEqual(catalog.getArchive(DEST, kept.row.key), kept.row);
    assert.equal(catalog.getArchive(DEST, gone.row.key), undefined);
    const c = catalog.getArchive(DEST, changed.row.key)!;
    assert.deepEqual([c.id, c.size, c.sha256, c.etag, c.completedAt, c.verifiedAt, c.startedAt], [changed.row.id, 42, sha(42), 'new', '2030-01-01T00:00:00.000Z', null, null]);
    assert.deepEqual(catalog.getArchive(OTHER_DEST, elsewhere.row.key), elsewhere.row);
    assert.deepEqual(catalog.getArchive(DEST, 'in-progress.tar'), { ...running, uploadId: 'mpu-running' });
    const u = catalog.getArchive(DEST, 'unfinished.tar')!;
    assert.deepEqual([u.status, u.uploadId, u.manifestKey, u.size], ['done', null, 'custom/unfinished.json', 5]);
    assert.deepEqual(catalog.incompleteArchives(DEST).map((r) => r.key), ['in-progress.tar']);
    catalog.close();
  });

  it('is one transaction: a manifest that cannot be stored leaves the catalog as it was', async () => {
    const file = await catalogFile();
    const catalog = openCatalog(file);
    const a = archive(catalog, 1);
    const before = catalog.listArchives();
    const broken = { ...a.manifest, key: 'broken.tar', compression: 'zstd' } as unknown as ArchiveManifest;
    assert.throws(() => catalog.rebuildFromManifests(DEST, [broken]), /CHECK constraint/);
    assert.deepEqual(catalog.listArchives(), before);
    catalog.close();
  });

  it('accepts any iterable, and an empty one empties the destination of done rows', async () => {
    const catalog = await freshCatalog();
    const a = archive(catalog, 1);
    function* gen() {
      yield a.manifest;
    }
    assert.equal(catalog.rebuildFromManifests(DEST, gen()).archives, 1);
    assert.deepEqual(catalog.rebuildFromManifests(DEST, []), { archives: 0, removed: 1, keptIncomplete: 0 });
    assert.deepEqual(catalog.listArchives(), []);
    catalog.close();
  });

  it('records what checked each manifest, and its SHA-256', async () => {
    const source = await freshCatalog();
    const made = [archive(source, 1), archive(source, 2), archive(source, 3)];
    source.close();
    const catalog = await freshCatalog();
    catalog.rebuildFromManifests(DEST, [
      { manifest: made[0]!.manifest, manifestKey: manifestKeyFor(made[0]!.manifest.key), manifestSha256: sha(0xa1), auth: 'authentic' },
      { manifest: made[1]!.manifest, manifestKey: manifestKeyFor(made[1]!.manifest.key), manifestSha256: sha(0xa2), auth: 'forged' },
      { manifest: made[2]!.manifest, manifestKey: manifestKeyFor(made[2]!.manifest.key), manifestSha256: sha(0xa3), auth: 'no-key' },
    ]);
    assert.deepEqual(
      catalog.listArchives({ destination: DEST }).map((r) => [r.sessionId, r.manifestAuth, r.manifestSha256]),
      [
        ['session-1', 'authentic', sha(0xa1)],
        ['session-2', 'forged', sha(0xa2)],
        ['session-3', 'no-key', sha(0xa3)],
      ],
    );
    catalog.close();
  });

  it('keeps a local upload vouched for by this catalog only for the same object with the same encryption and compression', async () => {
    const catalog = await freshCatalog();
    const a = archive(catalog, 1);
    const b = archive(catalog, 2);
    const begun = catalog.beginArchive(beginInput({ sessionId: 'session-3', key: 'c.tar', manifestKey: 'c.tar.manifest.json' }));
    catalog.completeArchive(begun.id, { size: 3, sha256: sha(3), etag: 'e', fileCount: 1, sourceBytes: 1, manifestSha256: sha(0xc0) });
    const c = manifest({ sessionId: 'session-3', key: 'c.tar', object: { size: 3, sha256: sha(3), etag: 'e', storageClass: 'DEEP_ARCHIVE' } });
    // a: the same object, its manifest rewritten; b: the same object "now unencrypted" (a downgrade).
    catalog.rebuildFromManifests(DEST, [
      { manifest: a.manifest, manifestKey: a.row.manifestKey, manifestSha256: sha(0xa0), auth: 'unsigned' },
      { manifest: { ...b.manifest, encryption: null }, manifestKey: b.row.manifestKey, manifestSha256: sha(0xb0), auth: 'unsigned' },
      { manifest: c, manifestKey: 'c.tar.manifest.json', manifestSha256: sha(0xc1), auth: 'authentic' },
    ]);
    const row = (key: string) => catalog.getArchive(DEST, key)!;
    assert.deepEqual([row(a.row.key).manifestAuth, row(a.row.key).manifestSha256, row(a.row.key).startedAt], ['local', null, a.row.startedAt]);
    assert.deepEqual([row(b.row.key).manifestAuth, row(b.row.key).encrypted, row(b.row.key).startedAt], ['unsigned', false, null]);
    // An authentic manifest of the same object becomes the one to compare with.
    assert.deepEqual([row('c.tar').manifestAuth, row('c.tar').manifestSha256], ['local', sha(0xc1)]);
    catalog.close();
  });
});
