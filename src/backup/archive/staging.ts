/**
 * A restore's staging directory: a private (0700) directory beside the session's final place,
 * in the same filesystem, so the whole session appears there with one rename, or not at all.
 */
import { chmod, lstat, mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { mkdtempPrivate, renameDurable } from '../../files/index.js';
import { ArchiveError } from './errors.js';

export interface Staging {
  /** Where to extract. */
  readonly dir: string;
  /** Moves `dir/name` to `target/name`; `dir` must hold nothing else. Then removes `dir`. */
  commit(name: string): Promise<void>;
  /** Removes everything extracted, and the directories this staging created. */
  discard(): Promise<void>;
}

/** A restore never merges into, or replaces, what the user has at `target/name`. */
export async function assertTargetFree(target: string, name: string): Promise<void> {
  // The name comes from the catalog, which a rebuild fills from the bucket: one plain name only.
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new ArchiveError('ArchiveCorrupted', `the session id "${name}" is not a directory name; it cannot be restored`);
  }
  const final = path.join(target, name);
  if (await exists(final)) {
    throw new ArchiveError('TargetExists', `${final} already exists: restore to another directory (--to), or move it away first`);
  }
}

/** After assertTargetFree: makes `target` (if missing) and the staging directory inside it. */
export async function openStaging(target: string, name: string): Promise<Staging> {
  await assertTargetFree(target, name);
  const final = path.join(target, name);
  const created = await mkdir(target, { recursive: true });
  const dir = await mkdtempPrivate(path.join(target, `.offsite-restore-${name}-`));
  return {
    dir,
    async commit(entry) {
      const names = await readdir(dir);
      if (names.length !== 1 || names[0] !== entry) {
        throw new ArchiveError('ArchiveCorrupted', `the archive holds ${names.length === 0 ? 'nothing' : names.map((n) => `"${n}"`).join(', ')} at its top level, where it should hold only "${entry}/"`);
      }
      if (await exists(final)) throw new ArchiveError('TargetExists', `${final} appeared while restoring: restore to another directory (--to), or move it away first`);
      await renameDurable(path.join(dir, entry), final);
      await rmdir(dir);
    },
    async discard() {
      await removeTree(dir);
      // The directories made for the target, if nothing else was put in them meanwhile.
      if (created === undefined) return;
      for (let d = target; d.startsWith(created); d = path.dirname(d)) {
        try {
          await rmdir(d);
        } catch {
          return;
        }
        if (d === created) return;
      }
    },
  };
}

/**
 * rm -rf that also removes what an archive restored read-only: directories are made writable
 * first (the staging directory is 0700, so no one else can swap anything in meanwhile), and
 * symbolic links are removed, never followed.
 */
async function removeTree(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory()) {
    await chmod(dir, 0o700);
    for (const name of await readdir(dir)) await removeTree(path.join(dir, name));
  }
  await rm(dir, { recursive: true, force: true });
}

async function exists(p: string): Promise<boolean> {
  return (await lstat(p).catch(() => undefined)) !== undefined;
}
