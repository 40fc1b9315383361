import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { Readable, addAbortSignal } from 'node:stream';
import { finished } from 'node:stream/promises';
import { CodecError } from './errors.js';
import { tarEnd, tarHeader, tarPadding } from './tar-header.js';
import type { FileEntry } from './types.js';
import { sourceError, walkSorted, type WalkEntry } from './walk.js';

// Why not node-tar's Pack: it has no sort order, keeps a Stats object for every path it visits
// (statCache), turns hard links into Link entries, and when the consumer stops mid-file it
// leaves that file's descriptor open. Here node-tar encodes the headers and this file streams
// the bodies, hashing each as it is read: one read per file, memory of one chunk.

/** Bytes read from a file at a time (and the largest chunk the stream emits). */
const READ_CHUNK = 1024 * 1024;

export interface PackOptions {
  signal?: AbortSignal;
  /** Called for each entry once it is in the stream (a file: once its last byte is). */
  onFile?: (entry: FileEntry) => void;
  /** What was left out or may be inconsistent: sockets, FIFOs, devices; files modified while read. */
  onWarning?: (warning: { path: string; message: string }) => void;
}

export interface PackResult {
  /** The tar archive. */
  stream: Readable;
  /** Every entry in archive order; resolves when `stream` has ended, rejects if it fails. */
  entries: Promise<FileEntry[]>;
}

/**
 * Streams `parentDir/name` as a tar (ustar, with pax headers where needed) whose paths all start
 * with `name/`, so `tar -xf` recreates `name/...`. Deterministic order (see walkSorted); symlinks
 * stored as symlinks, never followed; hard-linked files stored as separate full copies.
 * Errors (on the stream, and as the `entries` rejection): SourceUnreadable, SourceChanged.
 */
export function packDirectory(parentDir: string, name: string, opts: PackOptions = {}): PackResult {
  const root = rootName(name);
  const entries: FileEntry[] = [];
  const stream = Readable.from(tarChunks(parentDir, root, entries, opts), { objectMode: false });
  if (opts.signal) addAbortSignal(opts.signal, stream);
  const done = finished(stream).then(() => entries);
  // Callers that only watch the stream must not get an unhandled rejection from here.
  done.catch(() => undefined);
  return { stream, entries: done };
}

function rootName(name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (name.startsWith('/') || name.includes('\0') || parts.length === 0 || parts.includes('..')) {
    throw new CodecError('InvalidArgument', `the directory to pack is named relative to its parent, without "..": got "${name}"`);
  }
  return parts.join('/');
}

async function* tarChunks(parentDir: string, root: string, entries: FileEntry[], opts: PackOptions): AsyncGenerator<Buffer> {
  for await (const item of walkSorted(parentDir, root)) {
    let entry: FileEntry;
    if (item.kind === 'file') {
      entry = yield* fileChunks(item, opts);
    } else if (item.kind === 'directory') {
      const st = await statAs(item, (s) => s.isDirectory());
      entry = { path: item.rel, type: 'directory', size: 0, mode: st.mode & 0o7777, mtime: wholeSeconds(st).toISOString() };
      yield tarHeader({ path: `${item.rel}/`, type: 'Directory', mode: entry.mode, size: 0, mtime: wholeSeconds(st) });
    } else if (item.kind === 'symlink') {
      const st = await statAs(item, (s) => s.isSymbolicLink());
      const target = await readlink(item.abs).catch((cause: unknown) => {
        throw sourceError(item.abs, cause);
      });
      entry = { path: item.rel, type: 'symlink', size: 0, mode: st.mode & 0o7777, mtime: wholeSeconds(st).toISOString(), linkTarget: target };
      yield tarHeader({ path: item.rel, type: 'SymbolicLink', mode: entry.mode, size: 0, mtime: wholeSeconds(st), linkpath: target });
    } else {
      opts.onWarning?.({ path: item.rel, message: 'a socket, FIFO or device: not packed' });
      continue;
    }
    entries.push(entry);
    opts.onFile?.(entry);
  }
  yield tarEnd();
}

async function* fileChunks(item: WalkEntry, opts: PackOptions): AsyncGenerator<Buffer, FileEntry> {
  // O_NOFOLLOW + fstat: if the file was swapped for a symlink since it was listed, fail
  // rather than pack whatever the link points to.
  const fh = await open(item.abs, constants.O_RDONLY | constants.O_NOFOLLOW).catch((cause: unknown) => {
    throw sourceError(item.abs, cause);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CodecError('SourceChanged', `${item.abs} is no longer a regular file; pack again`, { path: item.abs });
    const { size } = st;
    const mode = st.mode & 0o7777;
    const mtime = wholeSeconds(st);
    yield tarHeader({ path: item.rel, type: 'File', mode, size, mtime });
    const hash = createHash('sha256');
    for (let pos = 0; pos < size; ) {
      // A fresh buffer per chunk: the previous one may still be queued downstream.
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        throw new CodecError('SourceChanged', `${item.abs} shrank while being packed (${pos} of ${size} bytes read); pack again`, { path: item.abs });
      }
      const chunk = bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      hash.update(chunk);
      pos += bytesRead;
      yield chunk;
    }
    const padding = tarPadding(size);
    if (padding.length > 0) yield padding;
    const after = await fh.stat();
    if (after.size !== size || after.mtimeMs !== st.mtimeMs) {
      opts.onWarning?.({ path: item.rel, message: 'modified while being read: the archived copy may mix old and new content' });
    }
    return { path: item.rel, type: 'file', size, sha256: hash.digest('hex'), mode, mtime: mtime.toISOString() };
  } finally {
    await fh.close();
  }
}

async function statAs(item: WalkEntry, ok: (s: Stats) => boolean): Promise<Stats> {
  const st = await lstat(item.abs).catch((cause: unknown) => {
    throw sourceError(item.abs, cause);
  });
  if (!ok(st)) throw new CodecError('SourceChanged', `${item.abs} changed type while being packed; pack again`, { path: item.abs });
  return st;
}

/** ustar keeps whole seconds; the manifest says exactly what the archive holds. */
function wholeSeconds(st: Stats): Date {
  return new Date(Math.floor(st.mtimeMs / 1000) * 1000);
}
