// `catalog rebuild`: the bucket's manifests are the truth, the archive rows an index of them.
import type { Database } from 'better-sqlite3';
import { ARCHIVE_COLUMNS, toArchiveRow, type StoredArchiveRow } from './archive-row.js';
import { checkDestination } from './checks.js';
import { manifestKeyFor, type ArchiveManifest } from './manifest.js';
import type { ArchiveRow, Catalog, LocatedManifest, RebuildResult } from './types.js';

function located(m: ArchiveManifest | LocatedManifest): LocatedManifest {
  return 'manifest' in m ? m : { manifest: m, manifestKey: manifestKeyFor(m.key) };
}

export function rebuildMethods(db: Database): Pick<Catalog, 'rebuildFromManifests'> {
  const rowsAt = db.prepare<[string], StoredArchiveRow>(`SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE destination = ?`);
  const remove = db.prepare<[number]>(`DELETE FROM archives WHERE id = ?`);
  // An upsert rather than delete + insert, so a row that stays keeps its id.
  const upsert = db.prepare<[Record<string, unknown>]>(`
    INSERT INTO archives (session_id, year, key, manifest_key, destination, status, upload_id, size, sha256, etag,
      storage_class, compression, encrypted, file_count, source_bytes, started_at, completed_at, error,
      verified_at, verify_ok, verify_result, manifest_sha256, manifest_auth)
    VALUES (@sessionId, @year, @key, @manifestKey, @destination, 'done', NULL, @size, @sha256, @etag,
      @storageClass, @compression, @encrypted, @fileCount, @sourceBytes, @startedAt, @completedAt, NULL,
      @verifiedAt, @verifyOk, @verifyResult, @manifestSha256, @manifestAuth)
    ON CONFLICT (destination, key) DO UPDATE SET
      session_id = excluded.session_id, year = excluded.year, manifest_key = excluded.manifest_key,
      status = 'done', upload_id = NULL, size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag,
      storage_class = excluded.storage_class, compression = excluded.compression, encrypted = excluded.encrypted,
      file_count = excluded.file_count, source_bytes = excluded.source_bytes, started_at = excluded.started_at,
      completed_at = excluded.completed_at, error = NULL, verified_at = excluded.verified_at,
      verify_ok = excluded.verify_ok, verify_result = excluded.verify_result,
      manifest_sha256 = excluded.manifest_sha256, manifest_auth = excluded.manifest_auth`);

  const rebuild = db.transaction((destination: string, manifests: Map<string, LocatedManifest>): RebuildResult => {
    const before = new Map<string, ArchiveRow>(rowsAt.all(destination).map((r) => [r.key, toArchiveRow(r)]));
    const result: RebuildResult = { archives: 0, removed: 0, keptIncomplete: 0 };
    for (const row of before.values()) {
      if (manifests.has(row.key)) continue;
      if (row.status === 'done') {
        remove.run(row.id);
        result.removed++;
      } else {
        result.keptIncomplete++;
      }
    }
    for (const { manifest: m, manifestKey, manifestSha256, auth = 'unsigned' } of manifests.values()) {
      const old = before.get(m.key);
      // Local history (when it ran, what verify said) is only worth keeping for the same object;
      // "same" includes how it is encrypted and compressed, so a rewritten manifest cannot
      // carry a locally uploaded row's trust over to other settings.
      const encrypted = m.encryption !== null;
      const same =
        old?.status === 'done' && old.size === m.object.size && old.sha256 === m.object.sha256 && old.encrypted === encrypted && old.compression === m.compression
          ? old
          : undefined;
      // Facts this machine uploaded stay vouched for by that; the manifest recorded then is kept
      // unless the new one is authentic (so an altered manifest is still told apart later).
      const local = same?.manifestAuth === 'local';
      upsert.run({
        sessionId: m.sessionId,
        year: m.year,
        key: m.key,
        manifestKey,
        destination,
        size: m.object.size,
        sha256: m.object.sha256,
        etag: m.object.etag,
        storageClass: m.object.storageClass,
        compression: m.compression,
        encrypted: encrypted ? 1 : 0,
        fileCount: m.source.files,
        sourceBytes: m.source.bytes,
        startedAt: same?.startedAt ?? null,
        completedAt: same?.completedAt ?? m.createdAt,
        verifiedAt: same?.verifiedAt ?? null,
        verifyOk: same?.verifyOk === undefined || same.verifyOk === null ? null : same.verifyOk ? 1 : 0,
        verifyResult: same?.verifyResult ?? null,
        manifestAuth: local ? 'local' : auth,
        manifestSha256: local && auth !== 'authentic' ? same.manifestSha256 : (manifestSha256 ?? null),
      });
      result.archives++;
    }
    return result;
  });

  return {
    rebuildFromManifests(destination, manifests) {
      checkDestination(destination);
      // Read the manifests before taking the write lock: the iterable may be slow to produce.
      // Two manifests for one key cannot both be in a bucket; if given, the last wins.
      const byKey = new Map<string, LocatedManifest>();
      for (const m of manifests) {
        const l = located(m);
        byKey.set(l.manifest.key, l);
      }
      return rebuild.immediate(destination, byKey);
    },
  };
}
