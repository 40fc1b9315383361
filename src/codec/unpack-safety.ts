import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { CodecError } from './errors.js';

/** Symlink hops before a path counts as a loop (Linux's MAXSYMLINKS). */
const MAX_HOPS = 40;

export function unsafeEntry(raw: string, why: string): CodecError {
  return new CodecError('UnsafeArchiveEntry', `refusing archive entry "${raw}": it ${why}`, { path: raw });
}

/**
 * An entry path relative to the destination, '/'-separated, '' for the destination itself.
 * Absolute paths and ".." segments are refused, never stripped: an archive that has them was
 * not made by Offsite, and what it meant is not ours to guess.
 */
export function safeRelativePath(raw: string): string {
  if (raw.includes('\0')) throw unsafeEntry(raw, 'contains a NUL byte');
  if (raw.startsWith('/')) throw unsafeEntry(raw, 'has an absolute path');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafeEntry(raw, 'has ".." in its path');
  return parts.join('/');
}

/** The same normalisation without the checks, for manifest paths ("a/b/" and "./a/b" are "a/b"). */
export function normalizeEntryPath(p: string): string {
  return p
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

export function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/**
 * Where `abs` really leads, resolving symlinks as the kernel would (".." after a link goes up
 * from the link's target, not from the link), and taking missing components as written.
 * undefined for a symlink loop, which leads nowhere.
 */
export async function resolvePhysical(abs: string): Promise<string | undefined> {
  const done: string[] = [];
  let todo = abs.split('/').filter((p) => p !== '');
  let hops = 0;
  let missing = false;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = `/${[...done, part].join('/')}`;
    const st: Stats | undefined = missing ? undefined : await lstat(here).catch(() => undefined);
    if (!st?.isSymbolicLink()) {
      missing ||= st === undefined;
      done.push(part);
      continue;
    }
    if (++hops > MAX_HOPS) return undefined;
    const target = await readlink(here);
    if (target.startsWith('/')) done.length = 0;
    todo = [...target.split('/').filter((p) => p !== ''), ...todo];
  }
  return `/${done.join('/')}`;
}

/** lstat, or undefined when nothing is there. */
export async function lstatIfAny(abs: string): Promise<Stats | undefined> {
  try {
    return await lstat(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
