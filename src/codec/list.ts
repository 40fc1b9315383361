import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { CodecError, isCodecError } from './errors.js';
import type { FileEntry } from './types.js';
import { safeRelativePath, unsafeEntry } from './unpack-safety.js';

export interface TarListing {
  /** Write the tar here (e.g. the last stage of a pipeline). */
  sink: Writable;
  /** Every entry, files with size and SHA-256; resolves when the sink has finished. */
  entries: Promise<FileEntry[]>;
}

/**
 * Reads a tar without extracting it: the entries as packDirectory reports them, to check a
 * stored archive against its manifest without writing to disk. Entries unpackTar would refuse
 * are refused here too (UnsafeArchiveEntry, UnsupportedArchiveEntry); a damaged archive is
 * InvalidArchive. Hard links are listed as files with their target's content.
 */
export function listTar(opts: { onFile?: (entry: FileEntry) => void } = {}): TarListing {
  const entries: FileEntry[] = [];
  const files = new Map<string, FileEntry>();
  const parser = new Parser({ strict: true });
  let failure: Error | undefined;
  const fail = (e: unknown): void => {
    failure ??= isCodecError(e) ? e : new CodecError('InvalidArchive', `not a valid tar archive: ${(e as Error).message}`, { cause: e });
    sink.destroy(failure);
  };
  const add = (entry: FileEntry): void => {
    entries.push(entry);
    if (entry.type === 'file') files.set(entry.path, entry);
    opts.onFile?.(entry);
  };

  parser.on('entry', (e: ReadEntry) => {
    try {
      const rel = safeRelativePath(e.path);
      const base = { path: rel, mode: e.mode ?? 0, mtime: (e.mtime ?? new Date(0)).toISOString() };
      if (rel === '') return void e.resume();
      if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') {
        // A listener on 'data' makes the entry flow as the parser feeds it: no buffering.
        const hash = createHash('sha256');
        let size = 0;
        e.on('data', (c: Buffer) => {
          hash.update(c);
          size += c.length;
        });
        e.on('end', () => add({ ...base, type: 'file', size, sha256: hash.digest('hex') }));
        return;
      }
      if (e.type === 'Directory' || e.type === 'GNUDumpDir') add({ ...base, type: 'directory', size: 0 });
      else if (e.type === 'SymbolicLink') add({ ...base, type: 'symlink', size: 0, linkTarget: e.linkpath ?? '' });
      else if (e.type === 'Link') {
        const target = files.get(safeRelativePath(e.linkpath ?? ''));
        if (!target) throw unsafeEntry(e.path, `is a hard link to "${e.linkpath}", which is not a file before it`);
        add({ ...base, type: 'file', size: target.size, sha256: target.sha256 });
      } else if (e.type === 'CharacterDevice' || e.type === 'BlockDevice' || e.type === 'FIFO') {
        throw unsafeEntry(e.path, `is a ${e.type}, which a backup never restores`);
      } else {
        throw new CodecError('UnsupportedArchiveEntry', `archive entry "${e.path}" is of type ${e.type}, which is not restored`, { path: e.path });
      }
      e.resume();
    } catch (err) {
      e.resume();
      fail(err);
    }
  });
  parser.on('ignoredEntry', (e: ReadEntry) =>
    fail(new CodecError('UnsupportedArchiveEntry', `archive entry "${e.path}" is of type ${e.type}, which is not restored`, { path: e.path })),
  );
  parser.on('error', fail);

  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parser.write(chunk);
      callback();
    },
    final(callback) {
      parser.once('end', () => callback(failure ?? null));
      parser.end();
    },
  });
  const done = new Promise<FileEntry[]>((resolve, reject) => {
    sink.once('finish', () => resolve(entries));
    sink.once('error', reject);
    sink.once('close', () => reject(failure ?? new CodecError('InvalidArchive', 'the tar listing was closed before the end of the archive')));
  });
  done.catch(() => undefined);
  return { sink, entries: done };
}
