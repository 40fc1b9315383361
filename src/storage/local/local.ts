import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import lockfile from 'proper-lockfile';
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

/** Offsite's own files inside the bucket directory; never listed, never a valid key. */
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
 * Limits of a file system: a key cannot be both an object and a "directory" of other keys
 * ("a" and "a/b"), and empty path segments, "." and ".." are refused.
 */
export class LocalStorage implements Storage {
  readonly url: string;
  readonly capabilities: Capabilities = { restoreArchived: false, presign: false, storageClasses: false, connections: 8 };
  private readonly root: string;
  private readonly counter = new StatsCounter();

  constructor(root: string) {
    this.root = path.resolve(root);
    this.url = `file://${this.root}`;
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const file = this.dataPath(key);
    this.counter.request('PutObject');
    await this.ensureInternalDirs();
    const tmp = path.join(this.root, INTERNAL_DIR, 'tmp', `${randomUUID()}.part`);
    try {
      const { etag, size } = await this.writeTemp(tmp, body, opts);
      return await this.withKeyLock(key, async () => {
        const current = await statOrUndefined(file);
        if (opts.ifNoneMatch === '*' && current) throw new PreconditionFailedError(key, 'an object already exists at this key');
        if (opts.ifMatch !== undefined) {
          if (!current) throw new PreconditionFailedError(key, 'no object exists at this key');
          const currentEtag = (await this.infoFor(key, file, current)).etag;
          if (currentEtag !== opts.ifMatch) throw new PreconditionFailedError(key, `its ETag is ${currentEtag}, not ${opts.ifMatch}`);
        }
        await this.renameIntoPlace(key, tmp, file);
        const st = await fs.stat(file);
        const sidecar: Sidecar = {
          etag,
          size,
          ino: st.ino,
          lastModified: st.mtime.toISOString(),
          storageClass: opts.storageClass ?? 'STANDARD',
          metadata: normaliseMetadata(opts.metadata),
          tags: { ...(opts.tags ?? {}) },
          ...(opts.contentType ? { contentType: opts.contentType } : {}),
        };
        await this.writeSidecar(key, sidecar);
        this.counter.up(size);
        return { key, etag, size };
      });
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const file = this.dataPath(key);
    this.counter.request('GetObject');
    opts.signal?.throwIfAborted();
    // Open first, then stat the open handle: the stream and the info describe the same inode
    // even if a writer renames a new version into place meanwhile.
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (e) {
      throw this.classify(e, key);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new NotFoundError(key, this.url);
      const info = await this.infoFor(key, file, st);
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
      body.on('data', (chunk: string | Buffer) => this.counter.down(chunk.length));
      return { body, info };
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async head(key: string, opts: SignalOption = {}): Promise<ObjectInfo> {
    const file = this.dataPath(key);
    this.counter.request('HeadObject');
    opts.signal?.throwIfAborted();
    const st = await statOrUndefined(file);
    if (!st || !st.isFile()) throw new NotFoundError(key, this.url);
    return this.infoFor(key, file, st);
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
      yield {
        type: 'object',
        key,
        size: stat.size,
        etag: fresh?.etag ?? (await md5File(path.join(this.root, key))),
        lastModified: stat.mtime,
        storageClass: fresh?.storageClass ?? 'STANDARD',
      };
    }
  }

  async delete(key: string, opts: SignalOption = {}): Promise<void> {
    const file = this.dataPath(key);
    this.counter.request('DeleteObject');
    opts.signal?.throwIfAborted();
    await this.ensureInternalDirs();
    await this.withKeyLock(key, async () => {
      await fs.rm(file, { force: true });
      await fs.rm(this.sidecarPath(key), { force: true });
      await this.pruneEmptyDirs(path.dirname(file));
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
    const file = this.dataPath(key);
    this.counter.request('GetObjectTagging');
    opts.signal?.throwIfAborted();
    const st = await statOrUndefined(file);
    if (!st || !st.isFile()) throw new NotFoundError(key, this.url);
    const sidecar = await this.readSidecar(key);
    return sidecar && sidecar.ino === st.ino ? { ...sidecar.tags } : {};
  }

  stats(): RequestStats {
    return this.counter.snapshot();
  }

  async close(): Promise<void> {}

  // --- paths and keys ------------------------------------------------------

  private dataPath(key: string): string {
    assertValidKey(key);
    const segments = key.split('/');
    if (segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new InvalidKeyError(key, 'the local adapter does not accept empty, "." or ".." path segments (no leading, trailing or double "/")');
    }
    // At any depth: a directory holding its own .offsite-local/ is another local bucket.
    if (segments.includes(INTERNAL_DIR)) throw new InvalidKeyError(key, `"${INTERNAL_DIR}" is reserved for Offsite and cannot be part of a key`);
    if (segments.some((s) => Buffer.byteLength(s) > 255)) throw new InvalidKeyError(key, 'a path segment is longer than 255 bytes (a file-system limit)');
    return path.join(this.root, ...segments);
  }

  private sidecarPath(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return path.join(this.root, INTERNAL_DIR, 'meta', h.slice(0, 2), `${h}.json`);
  }

  private async ensureInternalDirs(): Promise<void> {
    for (const d of ['tmp', 'meta', 'locks']) await fs.mkdir(path.join(this.root, INTERNAL_DIR, d), { recursive: true });
  }

  // --- writing ---------------------------------------------------------------

  private async writeTemp(tmp: string, body: PutBody, opts: PutOptions): Promise<{ etag: string; size: number }> {
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
    const out = createWriteStream(tmp, { flags: 'wx' });
    try {
      await pipeline(source, counting, out, opts.signal ? { signal: opts.signal } : {});
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw this.classify(e, tmp);
    }
    // Durable before it becomes visible: a crash after the rename must not expose a short file.
    const fh = await fs.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    return { etag: md5.digest('hex'), size };
  }

  private async renameIntoPlace(key: string, tmp: string, file: string): Promise<void> {
    // A concurrent delete may remove an empty parent directory between mkdir and rename: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.rename(tmp, file);
        await fsyncDir(path.dirname(file));
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt < 5) continue;
        if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
          throw new InvalidKeyError(key, 'it conflicts with another key: on the local adapter a key cannot be both an object and a prefix of other keys followed by "/"');
        }
        throw this.classify(e, key);
      }
    }
  }

  private async writeSidecar(key: string, sidecar: Sidecar): Promise<void> {
    const target = this.sidecarPath(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(sidecar));
    await fs.rename(tmp, target);
  }

  private async readSidecar(key: string): Promise<Sidecar | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.sidecarPath(key), 'utf8')) as Sidecar;
    } catch {
      return undefined;
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

  private async infoFor(key: string, file: string, st: Stats): Promise<ObjectInfo> {
    const sidecar = await this.readSidecar(key);
    const fresh = sidecar && sidecar.ino === st.ino && sidecar.size === st.size ? sidecar : undefined;
    return {
      key,
      size: st.size,
      etag: fresh?.etag ?? (await md5File(file)),
      lastModified: st.mtime,
      storageClass: fresh?.storageClass ?? 'STANDARD',
      metadata: { ...(fresh?.metadata ?? {}) },
      ...(fresh?.contentType ? { contentType: fresh.contentType } : {}),
    };
  }

  /**
   * Yields every object under `dir` (a key prefix ending in "/" or "") in S3 key order. Sorting
   * each directory by name, with sub-directories as "name/", gives the global UTF-8 byte order.
   * Sub-trees that cannot contain keys matching `prefix` or after `startAfter` are not read.
   */
  private async *walk(dir: string, prefix: string, startAfter: string | undefined): AsyncGenerator<{ key: string; stat: Stats }> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(path.join(this.root, dir), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw this.classify(e, dir);
    }
    const items = entries
      .filter((d) => d.name !== INTERNAL_DIR)
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
        const stat = await statOrUndefined(path.join(this.root, item.name));
        if (stat?.isFile()) yield { key: item.name, stat };
      }
    }
  }

  private classify(e: unknown, key: string): StorageError {
    if (e instanceof StorageError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return new NotFoundError(key, this.url);
    if (code === 'EACCES' || code === 'EPERM') {
      return new StorageError('AccessDenied', `${this.url}: permission denied for "${key}"; check the directory's owner and mode`, { key, cause: e });
    }
    if (code === 'ENOSPC') return new StorageError('StorageFailure', `${this.url}: no space left on device while writing "${key}"`, { key, cause: e });
    if (code === 'ENAMETOOLONG') return new InvalidKeyError(key, 'too long for this file system');
    return new StorageError('StorageFailure', `${this.url}: ${(e as Error).message ?? String(e)}`, { key, cause: e });
  }
}

async function statOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function md5File(file: string): Promise<string> {
  const h = createHash('md5');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}
