/**
 * Uploading sessions: each session directory becomes one tar, streamed (optionally gzipped and
 * age-encrypted) straight into storage, hashed on the way. An archive is marked done in the
 * catalog only after the store confirmed it, its size matched what was sent, and its manifest
 * (every file's path, size and SHA-256) was stored beside it. A killed run leaves rows that are
 * not done; the next run aborts their abandoned multipart uploads and uploads them again.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type Readable, type Transform } from 'node:stream';
import { manifestKeyFor, type ArchiveRow, type Catalog, type ArchiveManifest, type Compression } from '../../catalog/index.js';
import { encryptStream, gzipStream, hashingStream, packDirectory, parseRate, throttle, type ManifestKey } from '../../codec/index.js';
import type { Storage } from '../../storage/index.js';
import { assertOneEncryptionKind, isEncrypted, type ArchiveConfig } from './config.js';
import type { EventSink } from './events.js';
import { archiveKey, findSessions, notesKey, sessionStats, type Session } from './sessions.js';
import { ensureArchiveManifestKey } from './keys.js';
import { progressCounter, signedManifestText } from './manifest-io.js';
import { TOOL_VERSION } from './version.js';

export interface UploadOptions {
  sessionId?: string;
  year?: number;
  /** At most this many sessions (after filtering). */
  limit?: number;
  /**
   * false: upload sessions that are archived again, under the current settings (default: skip
   * them, whatever key, encryption or compression their archive was made with).
   */
  skipExisting?: boolean;
  /** Abort abandoned multipart uploads of earlier, interrupted runs (default: true). */
  cleanup?: boolean;
  bwlimit?: string;
  storageClass?: string;
  tags?: Record<string, string>;
  /** Report what would be uploaded, upload nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface UploadPlanEntry {
  sessionId: string;
  year: number;
  /** Where it goes (upload), or where its archive is (skip). */
  key: string;
  files: number;
  bytes: number;
  action: 'upload' | 'skip';
  reason?: string;
}

export interface UploadResult {
  uploaded: number;
  skipped: number;
  failed: Array<{ sessionId: string; error: string }>;
  bytes: number;
  seconds: number;
  plan: UploadPlanEntry[];
}

export async function uploadSessions(config: ArchiveConfig, storage: Storage, catalog: Catalog, opts: UploadOptions = {}): Promise<UploadResult> {
  const emit: EventSink = opts.onEvent ?? (() => undefined);
  assertOneEncryptionKind(config);
  const encrypted = isEncrypted(config);
  const destination = storage.url;
  catalog.markStaleOperations();

  let sessions = await findSessions(config);
  if (opts.sessionId !== undefined) {
    sessions = sessions.filter((s) => s.id === opts.sessionId);
    if (sessions.length === 0) throw new Error(`no session "${opts.sessionId}" under ${config.sessionsRoot}; "offsite archive list-sessions" shows them`);
  }
  if (opts.year !== undefined) sessions = sessions.filter((s) => s.year === opts.year);

  const plan: UploadPlanEntry[] = [];
  const current = { encrypted, compression: config.compress };
  for (const s of sessions) {
    const key = archiveKey(config.keyTemplate, s, { compress: config.compress, encrypted });
    // Archived is a fact of the catalog (session + destination), whatever key the settings of
    // this run would give it: a plain run must not upload again what an encrypted run stored.
    const done = catalog.findDoneArchive(destination, s.id);
    if (done && opts.skipExisting !== false) {
      const reason =
        done.key === key
          ? 'already archived'
          : `archived as ${done.key} (${settingsOf(done)}); the current settings would upload ${key} (${settingsOf(current)}): pass --no-skip-existing to upload it again under them`;
      // What was archived, from the catalog: a run over thousands of archived sessions need not
      // walk each of them again.
      plan.push({ sessionId: s.id, year: s.year, key: done.key, files: done.fileCount ?? 0, bytes: done.sourceBytes ?? 0, action: 'skip', reason });
    } else {
      const again = !done
        ? undefined
        : done.key === key
          ? `archived; uploading it again (--no-skip-existing)`
          : `archived as ${done.key} (${settingsOf(done)}); uploading it again under the current settings, to ${key} (${settingsOf(current)})`;
      plan.push({ sessionId: s.id, year: s.year, key, ...(await sessionStats(s.dir)), action: 'upload', ...(again ? { reason: again } : {}) });
    }
  }
  let toUpload = plan.filter((p) => p.action === 'upload');
  if (opts.limit !== undefined) {
    for (const p of toUpload.slice(opts.limit)) Object.assign(p, { action: 'skip', reason: `over --limit ${opts.limit}` });
    toUpload = toUpload.slice(0, opts.limit);
  }
  const result: UploadResult = { uploaded: 0, skipped: plan.length - toUpload.length, failed: [], bytes: 0, seconds: 0, plan };
  if (opts.dryRun) return result;

  const started = Date.now();
  const opId = catalog.startOperation('upload', { destination, sessions: toUpload.map((p) => p.sessionId) });
  // Every step from here on is part of the run: a failure is recorded as the run's, with its
  // reason ('interrupted' is for a run that was stopped).
  let step = 'starting';
  try {
    emit({ type: 'run-start', op: 'upload', sessions: toUpload.length, bytes: toUpload.reduce((n, p) => n + p.bytes, 0) });
    for (const p of plan) if (p.action === 'skip') emit({ type: 'session-skipped', sessionId: p.sessionId, reason: p.reason ?? '' });

    step = 'aborting the abandoned multipart uploads of interrupted runs';
    if (opts.cleanup !== false) await abortAbandonedUploads(storage, catalog, destination, emit);

    step = 'loading the manifest key';
    const signer = toUpload.length ? await manifestSigner(config, emit) : undefined;

    step = 'uploading';
    const byId = new Map(sessions.map((s) => [s.id, s]));
    for (const p of toUpload) {
      opts.signal?.throwIfAborted();
      const session = byId.get(p.sessionId)!;
      if (p.reason) emit({ type: 'notice', sessionId: p.sessionId, message: `${p.sessionId}: ${p.reason}` });
      try {
        const bytes = await uploadOne(config, storage, catalog, session, p, { ...opts, encrypted, emit, signer: signer! });
        result.uploaded++;
        result.bytes += bytes;
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        const error = (e as Error).message;
        result.failed.push({ sessionId: p.sessionId, error });
        emit({ type: 'session-failed', sessionId: p.sessionId, error });
      }
    }
  } catch (e) {
    const interrupted = opts.signal?.aborted === true;
    catalog.finishOperation(opId, {
      status: interrupted ? 'interrupted' : 'failed',
      bytes: result.bytes,
      seconds: (Date.now() - started) / 1000,
      error: interrupted ? (e as Error).message : `${step} failed: ${(e as Error).message}`,
    });
    throw e;
  }
  result.seconds = (Date.now() - started) / 1000;
  catalog.finishOperation(opId, { status: result.failed.length ? 'failed' : 'ok', bytes: result.bytes, seconds: result.seconds, ...(result.failed.length ? { error: `${result.failed.length} session(s) failed` } : {}) });
  if (result.bytes > 0 && result.seconds > 0) catalog.recordThroughput({ kind: 'upload', bytes: result.bytes, seconds: result.seconds });
  emit({ type: 'run-done', op: 'upload', ok: result.uploaded, skipped: result.skipped, failed: result.failed.length, bytes: result.bytes, seconds: result.seconds });
  return result;
}

/** "encrypted, gzip": the settings an archive was (or would be) made with. */
function settingsOf(a: Pick<ArchiveRow, 'encrypted' | 'compression'> | { encrypted: boolean; compression: Compression }): string {
  return `${a.encrypted ? 'encrypted' : 'not encrypted'}, ${a.compression === 'gzip' ? 'gzip' : 'not compressed'}`;
}

/** The manifest key that signs this run's manifests; the user is told once, when it is made. */
async function manifestSigner(config: ArchiveConfig, emit: EventSink): Promise<ManifestKey> {
  const { key, created } = await ensureArchiveManifestKey(config);
  if (created) {
    emit({
      type: 'notice',
      message: `created the manifest key ${key.file}: it signs every manifest, so a restore from the bucket alone can tell them from forgeries; keep a copy with your age identity (restoring without this catalog needs both)`,
    });
  }
  return key;
}

/** Rows a killed run left behind: their multipart uploads are billed until aborted. */
async function abortAbandonedUploads(storage: Storage, catalog: Catalog, destination: string, emit: EventSink): Promise<void> {
  for (const row of catalog.incompleteArchives(destination)) {
    if (!storage.abortMultipartUploads) continue;
    const aborted = await storage.abortMultipartUploads(row.key);
    if (aborted.length) {
      const known = row.uploadId && aborted.includes(row.uploadId) ? ` (including ${row.uploadId}, recorded by the interrupted run)` : '';
      emit({ type: 'cleanup', key: row.key, detail: `aborted ${aborted.length} abandoned multipart upload(s)${known}` });
    }
    catalog.setUploadId(row.id, null);
  }
}

async function uploadOne(
  config: ArchiveConfig,
  storage: Storage,
  catalog: Catalog,
  session: Session,
  p: UploadPlanEntry,
  opts: UploadOptions & { encrypted: boolean; emit: EventSink; signer: ManifestKey },
): Promise<number> {
  const { emit } = opts;
  const t0 = Date.now();
  const destination = storage.url;
  const storageClass = opts.storageClass ?? config.storageClass;
  const manifestKey = manifestKeyFor(p.key);
  const row = catalog.beginArchive(
    { sessionId: session.id, year: session.year, key: p.key, manifestKey, destination, compression: config.compress, encrypted: opts.encrypted, storageClass },
    { force: true },
  );
  emit({ type: 'session-start', sessionId: session.id, year: session.year, key: p.key, bytes: p.bytes, files: p.files });
  try {
    // Tar adds a 512-byte header per entry and pads to 512: a close estimate for the bar.
    const total = p.bytes + p.files * 1024 + 10240;
    const report = (done: number) => emit({ type: 'progress', sessionId: session.id, done: Math.min(done, total), total });
    const hash = hashingStream({ md5: false });
    const bwlimit = opts.bwlimit ?? config.bwlimit;
    // A plain tar (no gzip, age or bandwidth limit) is hashed and counted where the packer writes
    // it, and the packer writes it into the upload's own part buffers: no stream stage, no copy.
    const plain = config.compress !== 'gzip' && !opts.encrypted && !bwlimit;
    let sent = 0;
    const packed = packDirectory(path.dirname(session.dir), path.basename(session.dir), {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(plain
        ? {
            observe: (bytes: Buffer) => {
              hash.observe(bytes);
              report((sent += bytes.length));
            },
          }
        : {}),
    });
    let failure: Error | undefined;
    let body: Readable = packed.stream;
    if (!plain) {
      const stages: NodeJS.ReadWriteStream[] = [progressCounter(report)];
      if (config.compress === 'gzip') stages.push(gzipStream());
      if (opts.encrypted) stages.push(encryptStream({ recipients: config.recipients, ...(config.passphrase ? { passphrase: config.passphrase } : {}) }));
      stages.push(hash);
      if (bwlimit) stages.push(throttle(parseRate(bwlimit)));
      // pipeline() destroys every stage when one fails, so an error anywhere aborts the put.
      body = pipeline(packed.stream, ...(stages as [Transform]), (e) => {
        if (e) failure = e;
      }) as unknown as Readable;
    }
    const tags = { ...config.tags, ...(opts.tags ?? {}) };
    // Generous: long paths add pax headers; gzip and age can add a little to incompressible data.
    const sizeHint = Math.ceil((p.bytes + p.files * 2048 + 10240) * 1.01) + 1024 * 1024;
    const put = await storage.put(p.key, body, {
      sizeHint,
      storageClass,
      contentType: opts.encrypted ? 'application/octet-stream' : config.compress === 'gzip' ? 'application/gzip' : 'application/x-tar',
      metadata: { 'offsite-session': session.id, 'offsite-year': String(session.year) },
      ...(Object.keys(tags).length ? { tags } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      // Kept in the catalog, so a crash leaves a record of which multipart upload to abort.
      onMultipartStart: (uploadId) => catalog.setUploadId(row.id, uploadId),
    });
    if (failure) throw failure;
    const files = await packed.entries;
    const digest = hash.digest();
    // The store must hold exactly what was sent: size from the store, not from our counter.
    const head = await storage.head(p.key);
    if (head.size !== digest.bytes || put.size !== digest.bytes) {
      throw new Error(`stored size ${head.size} differs from the ${digest.bytes} bytes sent for ${p.key}; it will be uploaded again on the next run`);
    }
    const manifest: ArchiveManifest = {
      format: 'offsite-archive-manifest',
      version: 1,
      tool: { name: 'offsite', version: TOOL_VERSION },
      sessionId: session.id,
      year: session.year,
      key: p.key,
      createdAt: new Date().toISOString(),
      compression: config.compress,
      encryption: opts.encrypted ? { type: 'age', recipients: config.recipients, passphrase: config.passphrase !== undefined } : null,
      object: { size: digest.bytes, sha256: digest.sha256, etag: head.etag, storageClass },
      source: { root: session.dir, files: files.filter((f) => f.type !== 'directory').length, bytes: files.reduce((n, f) => n + (f.type === 'file' ? f.size : 0), 0) },
      files,
    };
    const manifestText = signedManifestText(manifest, opts.signer);
    await storage.put(manifestKey, manifestText, { contentType: 'application/json', storageClass: 'STANDARD' });
    catalog.completeArchive(row.id, {
      size: digest.bytes,
      sha256: digest.sha256,
      etag: head.etag,
      fileCount: manifest.source.files,
      sourceBytes: manifest.source.bytes,
      // So a later restore can tell this manifest from one rewritten in the bucket.
      manifestSha256: createHash('sha256').update(manifestText).digest('hex'),
    });
    for (const note of session.notes) {
      const key = notesKey(config.notesKeyTemplate, session, note);
      const st = await stat(note);
      const noteHash = hashingStream();
      await storage.put(key, createReadStream(note).pipe(noteHash), { storageClass: 'STANDARD', contentType: 'text/markdown' });
      catalog.recordNote({ sessionId: session.id, year: session.year, key, destination, sha256: noteHash.digest().sha256, size: st.size });
      emit({ type: 'notes-uploaded', sessionId: session.id, key });
    }
    emit({ type: 'session-done', sessionId: session.id, key: p.key, size: digest.bytes, sha256: digest.sha256, seconds: (Date.now() - t0) / 1000 });
    return digest.bytes;
  } catch (e) {
    catalog.failArchive(row.id, (e as Error).message);
    throw e;
  }
}
