import { createHash, randomUUID } from 'node:crypto';
import { constants, createReadStream, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import lockfile from 'proper-lockfile';
import { fsyncDir, mkdirPrivate, openNewPrivateFile } from '../../files/index.js';
import {
  InvalidKeyError,
  NotFoundError,
  PreconditionFailedError,
  StorageError,
} from '../errors.js';
import { assertValidKey, compareKeys, normaliseMetadata } from '../keys.js';
import { StatsCounter, type RequestStats } from '../stats.js';
import type {
  Capabilities,
  GetOptions,
  GetResult,
  ListEntry,
  ListOptions,
  ObjectInfo,
  PutBody,
  PutOptions,
  PutResult,
  SignalOption,
  Storage,
} from '../types.js';
import { BucketTree, type TreePath } from './tree.js';

/** Offsite's own files inside a local bucket (metadata, temp files, locks); never a key. */
export const LOCAL_INTERNAL_DIR = '.offsite-local';
const INTERNAL_DIR = LOCAL_INTERNAL_DIR;

/** What is kept beside each object (in INTERNAL_DIR/meta, named by a hash of the key). */
interface Sidecar {
  etag: string;
  size: number;
  /** Inode of the data file this sidecar describes: a sidecar for another inode is stale. */
  ino: number;
  lastModified: string;
  storageClass: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
  contentType?: string;
}

/**
 * A directory that behaves as a bucket. Objects are plain files at their key's path, so the
 * directory is readable with ordinary tools; metadata, tags and storage class live in a sidecar.
 *
 * Writes go to a temp file (fsynced), then are renamed into place under a per-key lock that all
 * processes honour, so readers see the old object or the new one, never a mix, and conditional
 * writes exclude each other across processes. A crash between the data rename and the sidecar
 * write leaves a sidecar for the old inode, which readers detect and ignore (the ETag is then
 * recomputed from the data).
 *
 * Everything it creates is private: files 0600, directories 0700, whatever the umask. It never
 * follows a symbolic link below the root, and never lists one (see tree.ts): a link or any
 * other non-file planted in the directory is not an object.
 *
 * Limits of a file system: a key cannot be both an object and a "directory" of other keys
 * ("a" and "a/b"), and empty path segments, "." and ".." are refused.
 */
export class LocalStorage implements Storage {
  readonly url: string;
  readonly capabilities: Capabilities = { restoreArchived: false, presign: false, storageClasses: false, connections: 8 };
  private readonly root: string;
  private readonly tree: BucketTree;
  private readonly counter = new StatsCounter();
  /** INTERNAL_DIR and its sub-directories, created and checked once per instance. */
  private internalReady: Promise<void> | undefined;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.url = `file://${this.root}`;
    this.tree = new BucketTree(this.root, this.url);
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const segments = this.segmentsOf(key);
    this.counter.request('PutObject');
    await this.ensureInternalDirs();
    const tmp = [INTERNAL_DIR, 'tmp', `${randomUUID()}.part`];
    try {
      const written = await this.writeTemp(tmp, body, opts);
      return await this.withKeyLock(key, async () => {
        // The directories first: the checks below must not look through a link.
        await this.ensureParent(key, segments);
        const current = await this.tree.lstatLast(segments);
        const exists = current !== undefined && current.isFile();
        if (opts.ifNoneMatch === '*' && exists) throw new PreconditionFailedError(key, 'an object already exists at this key');
        if (opts.ifMatch !== undefined) {
          if (!exists) throw new PreconditionFailedError(key, 'no object exists at this key');
          const currentEtag = (await this.infoFor(key, segments, current)).etag;
          if (currentEtag !== opts.ifMatch) throw new PreconditionFailedError(key, `its ETag is ${currentEtag}, not ${opts.ifMatch}`);
        }
        await this.renameIntoPlace(key, segments, tmp);
        const sidecar: Sidecar = {
          etag: written.etag,
          size: written.size,
          // The renamed file is the temp file's inode, with its mtime.
          ino: written.stat.ino,
          lastModified: written.stat.mtime.toISOString(),
          storageClass: opts.storageClass ?? 'STANDARD',
          metadata: normaliseMetadata(opts.metadata),
          tags: { ...(opts.tags ?? {}) },
          ...(opts.contentType ? { contentType: opts.contentType } : {}),
        };
        await this.writeSidecar(key, sidecar);
        this.counter.up(written.size);
        return { key, etag: written.etag, size: written.size };
      });
    } finally {
      await fs.rm(this.tree.abs(tmp), { force: true });
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const segments = this.segmentsOf(key);
    this.counter.request('GetObject');
    opts.signal?.throwIfAborted();
    // Open first, then stat the open handle: the stream and the info describe the same inode
    // even if a writer renames a new version into place meanwhile.
    let opened;
    try {
      opened = await this.tree.openForRead(segments);
    } catch (e) {
      throw this.classify(e, key);
    }
    if (!opened) throw new NotFoundError(key, this.url);
    const { handle, stat: st } = opened;
    try {
      if (!st.isFile()) throw new NotFoundError(key, this.url);
      const info = await this.infoFor(key, segments, st, handle);
      if (opts.ifMatch !== undefined && info.etag !== opts.ifMatch) {
        throw new PreconditionFailedError(key, `its ETag is ${info.etag}, not ${opts.ifMatch}`);
      }
      const start = opts.range?.start ?? 0;
      const end = Math.min(opts.range?.end ?? st.size - 1, st.size - 1);
      if (start > end) {
        // Empty object (or a range past the end): nothing to stream.
        await handle.close();
        return { body: Readable.from([]), info };
      }
      const body = createReadStream('', { fd: handle, start, end, autoClose: true, ...(opts.signal ? { signal: opts.signal } : {}) });
      // Counted when the stream ends or closes, never through a 'data' listener: that would
      // set the stream flowing at once, and a caller that awaits anything before reading (restore
      // opens its target file first) would lose the first chunks.
      let counted = false;
      const count = () => {
        if (counted) return;
        counted = true;
        this.counter.down(body.bytesRead);
      };
      body.once('end', count);
      body.once('close', count);
      return { body, info };
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async head(key: string, opts: SignalOption = {}): Promise<ObjectInfo> {
    const segments = this.segmentsOf(key);
    this.counter.request('HeadObject');
    opts.signal?.throwIfAborted();
    const st = await this.objectStat(key, segments);
    return this.infoFor(key, segments, st);
  }

  async *list(opts: ListOptions = {}): AsyncIterable<ListEntry> {
    const prefix = opts.prefix ?? '';
    const delimiter = opts.delimiter;
    const startAfter = opts.startAfter;
    this.counter.request('ListObjectsV2');
    let lastPrefix: string | undefined;
    for await (const { key, stat } of this.walk('', prefix, startAfter)) {
      opts.signal?.throwIfAborted();
      if (!key.startsWith(prefix)) continue;
      if (startAfter !== undefined && compareKeys(key, startAfter) <= 0) continue;
      if (delimiter) {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) {
          const common = key.slice(0, at + delimiter.length);
          if (common !== lastPrefix) {
            lastPrefix = common;
            // S3 skips a common prefix that sorts at or before startAfter.
            if (startAfter === undefined || compareKeys(common, startAfter) > 0) yield { type: 'prefix', prefix: common };
          }
          continue;
        }
      }
      const sidecar = await this.readSidecar(key);
      const fresh = sidecar && sidecar.ino === stat.ino && sidecar.size === stat.size ? sidecar : undefined;
      let etag = fresh?.etag;
      if (etag === undefined) {
        try {
          etag = await this.md5Of(key.split('/'));
        } catch (e) {
          throw this.classify(e, key);
        }
        // Gone (or swapped for a link) since the directory was read: not an object any more.
        if (etag === undefined) continue;
      }
      yield { type: 'object', key, size: stat.size, etag, lastModified: stat.mtime, storageClass: fresh?.storageClass ?? 'STANDARD' };
    }
  }

  async delete(key: string, opts: SignalOption = {}): Promise<void> {
    const segments = this.segmentsOf(key);
    this.counter.request('DeleteObject');
    opts.signal?.throwIfAborted();
    await this.ensureInternalDirs();
    await this.withKeyLock(key, async () => {
      // rm does not follow a link at the key itself (it removes the link), but it would follow
      // one in a directory above it: check those first.
      let parentExists: boolean;
      try {
        parentExists = (await this.tree.checkDir(segments.slice(0, -1))) === 'ok';
      } catch (e) {
        throw this.classify(e, key);
      }
      if (parentExists) await fs.rm(this.tree.abs(segments), { force: true });
      await fs.rm(this.sidecarPath(key), { force: true });
      if (parentExists) await this.pruneEmptyDirs(path.dirname(this.tree.abs(segments)));
    });
  }

  async deleteMany(keys: Iterable<string> | AsyncIterable<string>, opts: SignalOption = {}): Promise<{ deleted: number }> {
    let deleted = 0;
    let failure: unknown;
    const inFlight = new Set<Promise<void>>();
    for await (const key of keys) {
      if (failure) break;
      const p: Promise<void> = this.delete(key, opts)
        .then(() => void deleted++, (e: unknown) => void (failure ??= e))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= this.capabilities.connections) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
    return { deleted };
  }

  async getTags(key: string, opts: SignalOption = {}): Promise<Record<string, string>> {
    const segments = this.segmentsOf(key);
    this.counter.request('GetObjectTagging');
    opts.signal?.throwIfAborted();
    const st = await this.objectStat(key, segments);
    const sidecar = await this.readSidecar(key);
    return sidecar && sidecar.ino === st.ino ? { ...sidecar.tags } : {};
  }

  stats(): RequestStats {
    return this.counter.snapshot();
  }

  async close(): Promise<void> {}

  // --- paths and keys ------------------------------------------------------

  private segmentsOf(key: string): string[] {
    assertValidKey(key);
    const segments = key.split('/');
    if (segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new InvalidKeyError(key, 'the local adapter does not accept empty, "." or ".." path segments (no leading, trailing or double "/")');
    }
    // At any depth: a directory holding its own .offsite-local/ is another local bucket.
    if (segments.includes(INTERNAL_DIR)) throw new InvalidKeyError(key, `"${INTERNAL_DIR}" is reserved for Offsite and cannot be part of a key`);
    if (segments.some((s) => Buffer.byteLength(s) > 255)) throw new InvalidKeyError(key, 'a path segment is longer than 255 bytes (a file-system limit)');
    return segments;
  }

  private sidecarSegments(key: string): string[] {
    const h = createHash('sha256').update(key).digest('hex');
    return [INTERNAL_DIR, 'meta', h.slice(0, 2), `${h}.json`];
  }

  private sidecarPath(key: string): string {
    return this.tree.abs(this.sidecarSegments(key));
  }

  private ensureInternalDirs(): Promise<void> {
    // Checked once per instance: the temp and sidecar files are checked again at each open.
    this.internalReady ??= (async () => {
      // The root and the path to it are the user's choice: a link there is theirs to make.
      await mkdirPrivate(this.root);
      for (const d of ['tmp', 'meta', 'locks']) await this.tree.ensureDir([INTERNAL_DIR, d]);
    })().catch((e: unknown) => {
      this.internalReady = undefined;
      throw this.classify(e, INTERNAL_DIR);
    });
    return this.internalReady;
  }

  /** The object's lstat (NotFound for nothing, a directory or another non-file; links refused). */
  private async objectStat(key: string, segments: TreePath): Promise<Stats> {
    let st: Stats | undefined;
    try {
      st = await this.tree.lstatEntry(segments);
    } catch (e) {
      throw this.classify(e, key);
    }
    if (!st?.isFile()) throw new NotFoundError(key, this.url);
    return st;
  }

  // --- writing ---------------------------------------------------------------

  private async writeTemp(tmp: TreePath, body: PutBody, opts: PutOptions): Promise<{ etag: string; size: number; stat: Stats }> {
    const md5 = createHash('md5');
    let size = 0;
    const counting = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5.update(chunk);
        size += chunk.length;
        opts.onProgress?.(size);
        done(null, chunk);
      },
    });
    const source = typeof body === 'string' || body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
    const handle = await this.openPrivate(tmp);
    try {
      try {
        await pipeline(source, counting, writerTo(handle), opts.signal ? { signal: opts.signal } : {});
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        throw this.classify(e, tmp.join('/'));
      }
      // Durable before it becomes visible: a crash after the rename must not expose a short file.
      await handle.sync();
      return { etag: md5.digest('hex'), size, stat: await handle.stat() };
    } finally {
      await handle.close();
    }
  }

  /** A new 0600 file of Offsite's own (O_EXCL, O_NOFOLLOW), checked to be where it belongs. */
  private async openPrivate(rel: TreePath): Promise<fs.FileHandle> {
    let handle: fs.FileHandle;
    try {
      handle = await openNewPrivateFile(this.tree.abs(rel));
    } catch (e) {
      // The internal directories were removed by hand since this instance made them.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && this.internalReady !== undefined) {
        this.internalReady = undefined;
        await this.ensureInternalDirs();
        handle = await openNewPrivateFile(this.tree.abs(rel));
      } else {
        throw this.classify(e, rel.join('/'));
      }
    }
    try {
      await this.tree.assertOpenedAt(handle, rel);
    } catch (e) {
      // Created through a link that appeared since the check: remove it before a byte is written.
      await handle.close();
      await fs.rm(this.tree.abs(rel), { force: true });
      throw this.classify(e, rel.join('/'));
    }
    return handle;
  }

  private async ensureParent(key: string, segments: TreePath): Promise<void> {
    try {
      await this.tree.ensureDir(segments.slice(0, -1));
    } catch (e) {
      throw this.conflictOr(e, key);
    }
  }

  private async renameIntoPlace(key: string, segments: TreePath, tmp: TreePath): Promise<void> {
    const file = this.tree.abs(segments);
    // A concurrent delete may remove an empty parent directory between mkdir and rename: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0) await this.tree.ensureDir(segments.slice(0, -1));
        await fs.rename(this.tree.abs(tmp), file);
        await fsyncDir(path.dirname(file));
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue;
        throw this.conflictOr(e, key);
      }
    }
  }

  private conflictOr(e: unknown, key: string): StorageError {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
      return new InvalidKeyError(key, 'it conflicts with another key: on the local adapter a key cannot be both an object and a prefix of other keys followed by "/"');
    }
    return this.classify(e, key);
  }

  private async writeSidecar(key: string, sidecar: Sidecar): Promise<void> {
    const target = this.sidecarSegments(key);
    try {
      await this.tree.ensureDir(target.slice(0, -1));
    } catch (e) {
      throw this.classify(e, key);
    }
    const tmp = [...target.slice(0, -1), `${target.at(-1)!}.${randomUUID()}.tmp`];
    const handle = await this.openPrivate(tmp);
    try {
      await handle.writeFile(JSON.stringify(sidecar));
    } finally {
      await handle.close();
    }
    await fs.rename(this.tree.abs(tmp), this.tree.abs(target));
  }

  private async readSidecar(key: string): Promise<Sidecar | undefined> {
    let handle: fs.FileHandle | undefined;
    try {
      // Not through a link at its own name (a sidecar is Offsite's, never a user's link).
      handle = await fs.open(this.sidecarPath(key), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      return JSON.parse(await handle.readFile('utf8')) as Sidecar;
    } catch {
      return undefined;
    } finally {
      await handle?.close();
    }
  }

  private async withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    // proper-lockfile: mkdir of "<name>.lock" (atomic on every local file system), refreshed
    // while held, taken over when older than `stale` (a crashed holder), so a kill -9 never
    // wedges a key. It tracks held locks per name, so each key needs its own name.
    const lockName = path.join(this.root, INTERNAL_DIR, 'locks', createHash('sha256').update(key).digest('hex'));
    const release = await lockfile.lock(lockName, {
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: { retries: 400, factor: 1.2, minTimeout: 2, maxTimeout: 50, randomize: true },
    });
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      dir = path.dirname(dir);
    }
  }

  // --- reading ---------------------------------------------------------------

  /** `handle`: the open object, when there is one (its bytes are hashed if the sidecar is stale). */
  private async infoFor(key: string, segments: TreePath, st: Stats, handle?: fs.FileHandle): Promise<ObjectInfo> {
    const sidecar = await this.readSidecar(key);
    const fresh = sidecar && sidecar.ino === st.ino && sidecar.size === st.size ? sidecar : undefined;
    let etag = fresh?.etag;
    if (etag === undefined) {
      try {
        etag = handle ? await md5OfHandle(handle) : await this.md5Of(segments);
      } catch (e) {
        throw this.classify(e, key);
      }
      if (etag === undefined) throw new NotFoundError(key, this.url);
    }
    return {
      key,
      size: st.size,
      etag,
      lastModified: st.mtime,
      storageClass: fresh?.storageClass ?? 'STANDARD',
      metadata: { ...(fresh?.metadata ?? {}) },
      ...(fresh?.contentType ? { contentType: fresh.contentType } : {}),
    };
  }

  /** MD5 of the file at `segments`, read without following links; undefined if it is gone. */
  private async md5Of(segments: TreePath): Promise<string | undefined> {
    const opened = await this.tree.openForRead(segments);
    if (!opened) return undefined;
    try {
      return opened.stat.isFile() ? await md5OfHandle(opened.handle) : undefined;
    } finally {
      await opened.handle.close();
    }
  }

  /**
   * Yields every object under `dir` (a key prefix ending in "/" or "") in S3 key order. Sorting
   * each directory by name, with sub-directories as "name/", gives the global UTF-8 byte order.
   * Sub-trees that cannot contain keys matching `prefix` or after `startAfter` are not read.
   * Only regular files and real directories count: links, FIFOs, sockets and devices are skipped.
   */
  private async *walk(dir: string, prefix: string, startAfter: string | undefined): AsyncGenerator<{ key: string; stat: Stats }> {
    const segments = dir === '' ? [] : dir.slice(0, -1).split('/');
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(this.tree.abs(segments), { withFileTypes: true });
      // What was read must be the directory itself, not one swapped for a link meanwhile.
      if (segments.length > 0 && (await this.tree.checkDir(segments)) === 'missing') return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw this.classify(e, dir);
    }
    const items = entries
      .filter((d) => d.name !== INTERNAL_DIR && (d.isDirectory() || d.isFile()))
      .map((d) => ({ name: d.isDirectory() ? `${dir}${d.name}/` : `${dir}${d.name}`, isDir: d.isDirectory() }))
      .sort((a, b) => compareKeys(a.name, b.name));
    for (const item of items) {
      if (item.isDir) {
        // Descend only if this sub-tree can hold keys with the prefix, and keys after startAfter.
        if (!(item.name.startsWith(prefix) || prefix.startsWith(item.name))) continue;
        if (startAfter !== undefined && compareKeys(item.name, startAfter) < 0 && !startAfter.startsWith(item.name)) continue;
        yield* this.walk(item.name, prefix, startAfter);
      } else {
        if (!item.name.startsWith(prefix)) continue;
        const stat = await lstatOrUndefined(path.join(this.root, item.name));
        if (stat?.isFile()) yield { key: item.name, stat };
      }
    }
  }

  private classify(e: unknown, key: string): StorageError {
    if (e instanceof StorageError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return new NotFoundError(key, this.url);
    if (code === 'ELOOP') return this.tree.linkRefusal(key);
    if (code === 'EACCES' || code === 'EPERM') {
      return new StorageError('AccessDenied', `${this.url}: permission denied for "${key}"; check the directory's owner and mode`, { key, cause: e });
    }
    if (code === 'ENOSPC') return new StorageError('StorageFailure', `${this.url}: no space left on device while writing "${key}"`, { key, cause: e });
    if (code === 'ENAMETOOLONG') return new InvalidKeyError(key, 'too long for this file system');
    return new StorageError('StorageFailure', `${this.url}: ${(e as Error).message ?? String(e)}`, { key, cause: e });
  }
}

async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

// Plain reads and writes on the handle: a stream built on a FileHandle with autoClose: false
// keeps a reference that makes a later handle.close() wait forever.

/** A Writable that writes to an open file in order; the handle stays open. */
function writerTo(handle: fs.FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      handle.write(chunk).then(() => done(), done);
    },
  });
}

/** MD5 of an open file from its first byte; the handle stays open. */
async function md5OfHandle(handle: fs.FileHandle): Promise<string> {
  const h = createHash('md5');
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    h.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return h.digest('hex');
}
