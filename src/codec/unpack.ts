import { createHash } from 'node:crypto';
import { link, mkdir, open, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { writeGathered } from '../files/index.js';
import { CodecError, isCodecError, messageOf } from './errors.js';
import { ManifestCheck } from './manifest-check.js';
import type { FileEntry, UnpackReport } from './types.js';
import { createSymlinks, restoreDirectories, type DirMeta, type PendingSymlink } from './unpack-finish.js';
import { isInside, lstatIfAny, safeRelativePath, unsafeEntry } from './unpack-safety.js';

export interface UnpackOptions {
  /** The manifest the archive must match (from packDirectory's `entries`). */
  expected?: FileEntry[];
  signal?: AbortSignal;
}

/**
 * Extracts a tar stream into `destDir` (created if missing). Nothing is ever written outside
 * it: entries with absolute paths or "..", symlinks or hard links leading outside, devices and
 * FIFOs are refused (UnsafeArchiveEntry, naming the entry) and extraction stops there. Symlinks
 * are created last, so no entry is ever written through one; a path that would go through a
 * symlink is refused too. Permission bits and mtimes are restored (not setuid/setgid/sticky,
 * not owners). With `expected`, files are hashed as they are written and compared at the end
 * (ArchiveMismatch, listing the problems; the files stay on disk for inspection).
 * Other errors: InvalidArchive, UnsupportedArchiveEntry, ExtractFailed.
 */
export async function unpackTar(source: Readable, destDir: string, opts: UnpackOptions = {}): Promise<UnpackReport> {
  opts.signal?.throwIfAborted();
  // Until pipeline() listens, a source failing during the setup below must not be an uncaught
  // 'error' event; pipeline() still sees the error, as the stream's errored state.
  const early = (): void => undefined;
  source.on('error', early);
  try {
    return await unpackInto(source, destDir, opts);
  } finally {
    source.off('error', early);
  }
}

async function unpackInto(source: Readable, destDir: string, opts: UnpackOptions): Promise<UnpackReport> {
  await mkdir(destDir, { recursive: true }).catch((cause: unknown) => {
    throw new CodecError('ExtractFailed', `cannot create ${destDir}: ${messageOf(cause)}`, { path: destDir, cause });
  });
  const x = new Extractor(await realpath(destDir), opts.expected);
  try {
    await pipeline(source, x.sink, opts.signal ? { signal: opts.signal } : {});
  } catch (e) {
    x.fail(e);
    // Let the entry being written close its file first, but never wait forever: an entry that
    // never sees its end (seen once under heavy load after an abort) must not hang the caller.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([x.idle(), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    throw x.failure ?? e;
  }
  await x.finish();
  return x.report();
}

class Extractor {
  readonly sink: Writable;
  failure: Error | undefined;
  readonly #root: string;
  readonly #check: ManifestCheck | undefined;
  readonly #parser = new Parser({ strict: true });
  #work: Promise<void> = Promise.resolve();
  #current: ReadEntry | undefined;
  /** Paths known to be real directories (not symlinks), so each is checked once. */
  readonly #dirs = new Set<string>(['']);
  readonly #dirMeta = new Map<string, DirMeta>();
  /** Symlinks to create once everything else is written, in archive order. */
  readonly #symlinks = new Map<string, PendingSymlink>();
  #files = 0;
  #bytes = 0;
  /** Files written whose chmod, utimes and close are still running. */
  #trailing: Array<Promise<void>> = [];

  constructor(root: string, expected: FileEntry[] | undefined) {
    this.#root = root;
    this.#check = expected ? new ManifestCheck(expected) : undefined;
    const parser = this.#parser;
    // The parser emits the next entry only after this one ends, so entries run one at a time.
    parser.on('entry', (entry: ReadEntry) => {
      // fail() may destroy the entry the parser is still writing to; that must not throw.
      entry.on('error', () => undefined);
      this.#work = this.#work
        .then(() => (this.failure ? undefined : this.#entry(entry)))
        .catch((e: unknown) => this.fail(e))
        .finally(() => entry.resume());
    });
    parser.on('ignoredEntry', (entry: ReadEntry) =>
      this.fail(new CodecError('UnsupportedArchiveEntry', `archive entry "${entry.path}" is of type ${entry.type}, which is not restored`, { path: entry.path })),
    );
    parser.on('error', (e: Error) => this.fail(isCodecError(e) ? e : new CodecError('InvalidArchive', `not a valid tar archive: ${e.message}`, { cause: e })));
    this.sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (parser.write(chunk)) callback();
        else parser.once('drain', () => callback());
      },
      final: (callback) => {
        parser.once('end', () => void this.#work.then(() => callback(this.failure ?? null)));
        parser.end();
      },
    });
  }

  fail(e: unknown): void {
    this.failure ??= e instanceof Error ? e : new Error(String(e));
    this.sink.destroy(this.failure);
    // An entry waiting for data that will never come would keep idle() from settling.
    this.#current?.destroy();
  }

  /** Resolves once no entry is being written. */
  async idle(): Promise<void> {
    await this.#work;
    await this.#settleTrailing().catch(() => undefined);
  }

  async #entry(entry: ReadEntry): Promise<void> {
    this.#current = entry;
    const rel = safeRelativePath(entry.path);
    try {
      switch (entry.type) {
        case 'File':
        case 'OldFile':
        case 'ContiguousFile':
          return await this.#file(rel, entry);
        case 'Directory':
        case 'GNUDumpDir':
          return await this.#directory(rel, entry);
        case 'SymbolicLink':
          return await this.#symlink(rel, entry);
        case 'Link':
          return await this.#hardlink(rel, entry);
        case 'CharacterDevice':
        case 'BlockDevice':
        case 'FIFO':
          throw unsafeEntry(entry.path, `is a ${entry.type}, which a backup never restores`);
        default:
          throw new CodecError('UnsupportedArchiveEntry', `archive entry "${entry.path}" is of type ${entry.type}, which is not restored`, { path: entry.path });
      }
    } catch (e) {
      if (isCodecError(e) || this.failure) throw e;
      throw new CodecError('ExtractFailed', `cannot extract "${entry.path}" into ${this.#root}: ${messageOf(e)}`, { path: entry.path, cause: e });
    } finally {
      this.#current = undefined;
    }
  }

  async #file(rel: string, entry: ReadEntry): Promise<void> {
    if (rel === '') throw unsafeEntry(entry.path, 'names the destination directory itself');
    // Most entries name a path nothing is at yet: create it at once ('wx', O_EXCL: never through
    // anything at that path), and only when something is there go the long way (#place).
    await this.#parents(rel, entry.path);
    this.#symlinks.delete(rel);
    let abs = path.join(this.#root, rel);
    const fh = await open(abs, 'wx', 0o600).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
      abs = await this.#place(rel, entry.path, 'file');
      return open(abs, 'wx', 0o600);
    });
    const hash = createHash('sha256');
    let size = 0;
    try {
      // fail() destroys the entry to end this loop; one destroyed before the loop began would hang it.
      if (this.failure) throw this.failure;
      size = await writeGathered(fh, entry as AsyncIterable<Buffer>, { onChunk: (chunk) => hash.update(chunk) });
    } catch (e) {
      await fh.close();
      throw e;
    }
    // Mode, times and close run behind the next entries (three trips through the thread pool
    // that the next file need not wait for); finish() and idle() wait for all of them.
    const mode = permissions(entry, 0o644);
    const mtime = entry.mtime;
    this.#trailing.push(
      fh
        .chmod(mode)
        .then(() => (mtime ? fh.utimes(mtime, mtime) : undefined))
        .finally(() => fh.close())
        .catch((e: unknown) => {
          throw new CodecError('ExtractFailed', `cannot set the mode or times of "${entry.path}": ${messageOf(e)}`, { path: entry.path, cause: e });
        }),
    );
    if (this.#trailing.length >= MAX_TRAILING) await this.#settleTrailing();
    this.#files++;
    this.#bytes += size;
    this.#check?.file(rel, size, hash.digest('hex'));
  }

  /** Waits for every file's trailing mode, times and close; the first failure is thrown. */
  async #settleTrailing(): Promise<void> {
    const pending = this.#trailing.splice(0);
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async #directory(rel: string, entry: ReadEntry): Promise<void> {
    // The destination itself ("./"): its permissions are the caller's, not the archive's.
    if (rel === '') return;
    const abs = await this.#place(rel, entry.path, 'directory');
    await mkdir(abs).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    this.#dirs.add(rel);
    this.#dirMeta.set(rel, { mode: permissions(entry, 0o755), mtime: entry.mtime });
    this.#check?.directory(rel);
  }

  async #symlink(rel: string, entry: ReadEntry): Promise<void> {
    if (rel === '') throw unsafeEntry(entry.path, 'names the destination directory itself');
    const target = entry.linkpath;
    if (!target) throw new CodecError('InvalidArchive', `archive entry "${entry.path}" is a symbolic link without a target`, { path: entry.path });
    const abs = await this.#place(rel, entry.path, 'symlink');
    if (!isInside(this.#root, path.resolve(path.dirname(abs), target))) {
      throw unsafeEntry(entry.path, `is a symbolic link to "${target}", outside the destination`);
    }
    this.#symlinks.delete(rel); // re-inserted: creation follows the order of the last occurrence
    this.#symlinks.set(rel, { target, mtime: entry.mtime });
    this.#check?.symlink(rel, target);
  }

  async #hardlink(rel: string, entry: ReadEntry): Promise<void> {
    if (rel === '') throw unsafeEntry(entry.path, 'names the destination directory itself');
    const raw = entry.linkpath ?? '';
    let targetRel: string;
    try {
      targetRel = safeRelativePath(raw);
    } catch {
      throw unsafeEntry(entry.path, `is a hard link to "${raw}", outside the destination`);
    }
    if (targetRel === '' || targetRel === rel || this.#symlinks.has(targetRel)) {
      throw unsafeEntry(entry.path, `is a hard link to "${raw}", which is not a file of this archive`);
    }
    await this.#parents(targetRel, entry.path);
    const targetAbs = path.join(this.#root, targetRel);
    const st = await lstatIfAny(targetAbs);
    if (!st?.isFile()) throw unsafeEntry(entry.path, `is a hard link to "${raw}", which is not a file extracted before it`);
    const abs = await this.#place(rel, entry.path, 'file');
    await link(targetAbs, abs);
    this.#files++;
    this.#check?.hardlink(rel, targetRel);
  }

  /**
   * Makes `rel`'s parent directories (refusing to go through a symlink) and clears its own
   * path: an old file or symlink there is removed, never written through. Returns the
   * absolute path.
   */
  async #place(rel: string, raw: string, kind: 'file' | 'directory' | 'symlink'): Promise<string> {
    await this.#parents(rel, raw);
    // A later entry for the same path replaces an earlier one, as tar does.
    if (kind !== 'symlink') this.#symlinks.delete(rel);
    const abs = path.join(this.#root, rel);
    const st = await lstatIfAny(abs);
    if (st?.isDirectory()) {
      if (kind === 'directory') return abs;
      throw new CodecError('ExtractFailed', `cannot extract "${raw}": a directory is in the way`, { path: raw });
    }
    if (st && kind !== 'symlink') await unlink(abs);
    return abs;
  }

  async #parents(rel: string, raw: string): Promise<void> {
    const parts = rel.split('/').slice(0, -1);
    let dir = '';
    for (const part of parts) {
      dir = dir ? `${dir}/${part}` : part;
      if (this.#dirs.has(dir)) continue;
      if (this.#symlinks.has(dir)) throw unsafeEntry(raw, `goes through "${dir}", a symbolic link in the same archive`);
      const abs = path.join(this.#root, dir);
      const st = await lstatIfAny(abs);
      if (!st) {
        await mkdir(abs).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
      } else if (st.isSymbolicLink()) {
        throw unsafeEntry(raw, `goes through "${dir}", a symbolic link already in the destination`);
      } else if (!st.isDirectory()) {
        throw new CodecError('ExtractFailed', `cannot extract "${raw}": "${dir}" is a file, not a directory`, { path: raw });
      }
      this.#dirs.add(dir);
    }
  }

  /** After the last entry: symlinks, then directory permissions and times. */
  async finish(): Promise<void> {
    try {
      await this.#settleTrailing();
      await createSymlinks(this.#root, this.#symlinks);
      await restoreDirectories(this.#root, this.#dirMeta);
    } catch (e) {
      if (isCodecError(e)) throw e;
      throw new CodecError('ExtractFailed', `cannot finish extracting into ${this.#root}: ${messageOf(e)}`, { cause: e });
    }
  }

  report(): UnpackReport {
    const result = this.#check?.result();
    if (result && result.problemCount > 0) {
      const shown = result.problems.slice(0, 5).join('; ');
      throw new CodecError(
        'ArchiveMismatch',
        `the archive does not match its manifest (${result.problemCount} problem${result.problemCount === 1 ? '' : 's'}): ${shown}${result.problemCount > 5 ? '; ...' : ''}`,
        { problems: result.problems },
      );
    }
    return { files: this.#files, symlinks: this.#symlinks.size, bytes: this.#bytes, checked: result?.checked ?? 0 };
  }
}

/** Files whose mode, times and close may run behind the extraction at once. */
const MAX_TRAILING = 64;

/** rwx bits only: setuid/setgid/sticky from an archive are not worth the risk. */
function permissions(entry: ReadEntry, fallback: number): number {
  return (entry.mode ?? fallback) & 0o777;
}
