import { chmod, lutimes, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { CodecError } from './errors.js';
import { isInside, lstatIfAny, resolvePhysical, unsafeEntry } from './unpack-safety.js';

// The last steps of an extraction, once every entry is written: what, done earlier, would have
// let a later entry be written through a symlink, or been undone by later writes.

export interface PendingSymlink {
  target: string;
  mtime: Date | undefined;
}

export interface DirMeta {
  mode: number;
  mtime: Date | undefined;
}

/**
 * Creates the archive's symlinks (relative paths under `root`, each target already checked on
 * its own), replacing whatever file is at their path. Then checks where each really leads: a
 * target can pass through another symlink of the archive ("a/../../x" with a → ".."), which is
 * known only once all exist. Links leading outside are removed and the archive refused.
 */
export async function createSymlinks(root: string, links: ReadonlyMap<string, PendingSymlink>): Promise<void> {
  for (const [rel, { target, mtime }] of links) {
    const abs = path.join(root, rel);
    const st = await lstatIfAny(abs);
    if (st?.isDirectory()) throw new CodecError('ExtractFailed', `cannot extract "${rel}": a directory is in the way of the symbolic link`, { path: rel });
    if (st) await unlink(abs);
    await symlink(target, abs);
    if (mtime) await lutimes(abs, mtime, mtime);
  }
  const escaping: string[] = [];
  for (const rel of links.keys()) {
    const where = await resolvePhysical(path.join(root, rel));
    if (where !== undefined && !isInside(root, where)) escaping.push(rel);
  }
  if (escaping.length === 0) return;
  for (const rel of escaping) await unlink(path.join(root, rel));
  throw unsafeEntry(escaping[0] as string, 'is a symbolic link that, through other links of the archive, leads outside the destination');
}

/**
 * Directory permissions and times, deepest first: writing into a directory changes its mtime,
 * and one restored read-only could not have been filled.
 */
export async function restoreDirectories(root: string, dirs: ReadonlyMap<string, DirMeta>): Promise<void> {
  const deepestFirst = [...dirs].sort(([a], [b]) => b.split('/').length - a.split('/').length);
  for (const [rel, { mode, mtime }] of deepestFirst) {
    const abs = path.join(root, rel);
    await chmod(abs, mode);
    if (mtime) await utimes(abs, mtime, mtime);
  }
}
