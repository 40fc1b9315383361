import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { CodecError, messageOf } from './errors.js';

export interface WalkEntry {
  /** '/'-separated path from the parent directory: "name/sub/file". */
  rel: string;
  abs: string;
  kind: 'file' | 'directory' | 'symlink' | 'other';
}

/**
 * Depth-first walk of `parentDir/name`, each directory before its contents, siblings in byte
 * order of their UTF-8 names (the same order on every machine and locale). Symlinks are not
 * followed. Holds one directory listing per level, never the whole tree.
 */
export async function* walkSorted(parentDir: string, name: string): AsyncGenerator<WalkEntry> {
  const abs = path.join(parentDir, name);
  const st = await lstat(abs).catch((cause: unknown) => {
    throw new CodecError('SourceUnreadable', `cannot read ${abs}: ${messageOf(cause)}`, { path: abs, cause });
  });
  if (!st.isDirectory()) throw new CodecError('SourceUnreadable', `${abs} is not a directory`, { path: abs });
  yield { rel: name, abs, kind: 'directory' };
  yield* walkChildren(abs, name);
}

async function* walkChildren(dirAbs: string, dirRel: string): AsyncGenerator<WalkEntry> {
  let children: Dirent<Buffer>[];
  try {
    children = await readdir(dirAbs, { withFileTypes: true, encoding: 'buffer' });
  } catch (cause) {
    throw sourceError(dirAbs, cause);
  }
  children.sort((a, b) => Buffer.compare(a.name, b.name));
  for (const child of children) {
    const name = child.name.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(child.name)) {
      // A tar path is UTF-8 text; a name that is not would be restored under another name.
      throw new CodecError('SourceUnreadable', `a file name in ${dirAbs} is not valid UTF-8 (${JSON.stringify(name)}): rename it to back it up`, {
        path: dirAbs,
      });
    }
    const entry: WalkEntry = {
      rel: `${dirRel}/${name}`,
      abs: path.join(dirAbs, name),
      kind: child.isDirectory() ? 'directory' : child.isFile() ? 'file' : child.isSymbolicLink() ? 'symlink' : 'other',
    };
    yield entry;
    if (entry.kind === 'directory') yield* walkChildren(entry.abs, entry.rel);
  }
}

/** Classifies a failure to read the source: gone or replaced since listed, or unreadable. */
export function sourceError(abs: string, cause: unknown): CodecError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
    return new CodecError('SourceChanged', `${abs} was removed or replaced while being packed; pack again`, { path: abs, cause });
  }
  return new CodecError('SourceUnreadable', `cannot read ${abs}: ${messageOf(cause)}`, { path: abs, cause });
}
