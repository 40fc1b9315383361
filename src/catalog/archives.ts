// Archive rows: the upload lifecycle (begin → uploadId → complete | fail) and its queries.
import type { Database } from 'better-sqlite3';
import { ARCHIVE_COLUMNS, toArchiveRow, type StoredArchiveRow } from './archive-row.js';
import { checkCount, checkDestination, checkSha256, nowIso } from './checks.js';
import { CatalogError } from './errors.js';
import type { ArchiveFilter, ArchiveRow, Catalog } from './types.js';

type ArchiveMethods = Pick<
  Catalog,
  | 'beginArchive'
  | 'setUploadId'
  | 'completeArchive'
  | 'failArchive'
  | 'getArchive'
  | 'findDoneArchive'
  | 'findArchivesBySession'
  | 'listArchives'
  | 'incompleteArchives'
  | 'recordVerify'
>;

export function archiveMethods(db: Database): ArchiveMethods {
  // One statement, so "is it done?" and "reset it" cannot be split by another writer. The
  // DO UPDATE's WHERE leaves a done row alone, and then RETURNING yields nothing.
  const begin = db.prepare<[Record<string, unknown>], StoredArchiveRow>(`
    INSERT INTO archives (session_id, year, key, manifest_key, destination, status, compression, encrypted, storage_class, started_at)
    VALUES (@sessionId, @year, @key, @manifestKey, @destination, 'uploading', @compression, @encrypted, @storageClass, @now)
    ON CONFLICT (destination, key) DO UPDATE SET
      session_id = excluded.session_id, year = excluded.year, manifest_key = excluded.manifest_key,
      status = 'uploading', compression = excluded.compression, encrypted = excluded.encrypted,
      storage_class = excluded.storage_class, started_at = excluded.started_at,
      upload_id = CASE WHEN archives.status = 'done' THEN NULL ELSE archives.upload_id END,
      size = NULL, sha256 = NULL, etag = NULL, file_count = NULL, source_bytes = NULL,
      completed_at = NULL, error = NULL, verified_at = NULL, verify_ok = NULL, verify_result = NULL,
      manifest_sha256 = NULL, manifest_auth = NULL
    WHERE archives.status <> 'done' OR @force = 1
    RETURNING ${ARCHIVE_COLUMNS}`);
  const byId = db.prepare<[number], StoredArchiveRow>(`SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE id = ?`);
  const byKey = db.prepare<[string, string], StoredArchiveRow>(`SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE destination = ? AND key = ?`);
  const bySession = db.prepare<[string], StoredArchiveRow>(`SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE session_id = ? ORDER BY year, key, destination`);
  const doneOfSession = db.prepare<[string, string], StoredArchiveRow>(
    `SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE destination = ? AND session_id = ? AND status = 'done' ORDER BY completed_at DESC, id DESC LIMIT 1`,
  );
  const list = db.prepare<[Record<string, unknown>], StoredArchiveRow>(`
    SELECT ${ARCHIVE_COLUMNS} FROM archives
    WHERE (@year IS NULL OR year = @year) AND (@status IS NULL OR status = @status) AND (@destination IS NULL OR destination = @destination)
    ORDER BY year, key, destination`);
  const incomplete = db.prepare<[string], StoredArchiveRow>(
    `SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE destination = ? AND status <> 'done' ORDER BY started_at, id`,
  );
  const setUpload = db.prepare<[string | null, number]>(`UPDATE archives SET upload_id = ? WHERE id = ? AND status <> 'done'`);
  const complete = db.prepare<[Record<string, unknown>], StoredArchiveRow>(`
    UPDATE archives SET status = 'done', size = @size, sha256 = @sha256, etag = @etag, file_count = @fileCount,
      source_bytes = @sourceBytes, completed_at = @now, upload_id = NULL, error = NULL,
      manifest_sha256 = @manifestSha256, manifest_auth = 'local'
    WHERE id = @id AND status = 'uploading'
    RETURNING ${ARCHIVE_COLUMNS}`);
  const fail = db.prepare<[string, number]>(`UPDATE archives SET status = 'failed', error = ? WHERE id = ? AND status <> 'done'`);
  const verify = db.prepare<[string, number, string, number]>(
    `UPDATE archives SET verified_at = ?, verify_ok = ?, verify_result = ? WHERE id = ? AND status = 'done'`,
  );

  /** Why an UPDATE guarded by a status matched nothing. */
  function refusal(id: number, action: string): CatalogError {
    const row = byId.get(id);
    if (!row) return new CatalogError('NotFound', `no archive with id ${id} in the catalog`);
    if (row.status === 'done') {
      return new CatalogError('AlreadyDone', `archive ${row.key} at ${row.destination} is already done (completed ${row.completedAt}); cannot ${action}`);
    }
    return new CatalogError('InvalidState', `archive ${row.key} at ${row.destination} is '${row.status}'; cannot ${action}`);
  }

  return {
    beginArchive(input, opts = {}) {
      checkDestination(input.destination);
      checkCount('year', input.year);
      const row = begin.get({ ...input, encrypted: input.encrypted ? 1 : 0, force: opts.force ? 1 : 0, now: nowIso() });
      if (row) return toArchiveRow(row);
      const done = byKey.get(input.destination, input.key);
      throw new CatalogError(
        'AlreadyDone',
        `archive ${input.key} at ${input.destination} is already done (completed ${done?.completedAt ?? '?'}); pass { force: true } to upload it again`,
      );
    },

    setUploadId(id, uploadId) {
      if (setUpload.run(uploadId, id).changes === 0) throw refusal(id, 'set its multipart upload id');
    },

    completeArchive(id, result) {
      checkCount('size', result.size);
      checkSha256(result.sha256);
      checkCount('fileCount', result.fileCount);
      checkCount('sourceBytes', result.sourceBytes);
      if (result.manifestSha256 !== undefined) checkSha256(result.manifestSha256);
      const row = complete.get({ ...result, manifestSha256: result.manifestSha256 ?? null, id, now: nowIso() });
      if (!row) throw refusal(id, 'complete it (only an uploading archive completes; call beginArchive first)');
      return toArchiveRow(row);
    },

    failArchive(id, error) {
      if (fail.run(error, id).changes === 0) throw refusal(id, 'mark it failed (use recordVerify to report a problem with a done archive)');
    },

    getArchive(destination, key) {
      const row = byKey.get(destination, key);
      return row && toArchiveRow(row);
    },

    findDoneArchive(destination, sessionId) {
      const row = doneOfSession.get(destination, sessionId);
      return row && toArchiveRow(row);
    },

    findArchivesBySession(sessionId) {
      return bySession.all(sessionId).map(toArchiveRow);
    },

    listArchives(filter: ArchiveFilter = {}): ArchiveRow[] {
      return list.all({ year: filter.year ?? null, status: filter.status ?? null, destination: filter.destination ?? null }).map(toArchiveRow);
    },

    incompleteArchives(destination) {
      return incomplete.all(destination).map(toArchiveRow);
    },

    recordVerify(id, ok, detail) {
      if (verify.run(nowIso(), ok ? 1 : 0, detail, id).changes === 0) throw refusal(id, 'record a verify result (only done archives are verified)');
    },
  };
}
