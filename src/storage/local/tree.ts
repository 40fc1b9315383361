/**
 * The bucket directory as a tree that is never left through a symbolic link. Anyone who can
 * write inside the directory (another user, when it was created world-writable; a tool that
 * copies links in) could otherwise plant `link.txt -> ~/.ssh/id_ed25519` to make `get` serve a
 * file outside, or `dir -> /home/me` to make `put` write there. So a link anywhere below the
 * root is refused (the root itself, and the path above it, are the user's choice and may be
 * links), and only regular files are objects.
 *
 * How, and what it costs on the hot paths:
 * - Reads open the final name with O_NOFOLLOW (a link there fails with ELOOP) and O_NONBLOCK
 *   (a FIFO planted at a key cannot hang the open), then ask the kernel where the open file
 *   really is (/proc/self/fd on Linux): a directory link anywhere on the path, even one swapped
 *   in between a check and the open, shows as a path outside the expected one. One readlink.
 * - Other operations resolve the parent directory with one realpath() and compare. A writer
 *   that swaps a directory for a link between that check and the rename can still win the
 *   race (Node has no openat()/renameat() on directory handles): documented in docs/storage.md.
 * - Offsite's own temp and sidecar files are created O_EXCL|O_NOFOLLOW and checked like reads,
 *   right after the open, before any byte of the object is written to them.
 */
import { constants, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirPrivate } from '../../files/index.js';
import { StorageError } from '../errors.js';

const OPEN_READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A path inside the bucket, as its segments ("a/b/c" -> ["a", "b", "c"]). */
export type TreePath = readonly string[];

export class BucketTree {
  private realRootCache: string | undefined;
  /** Whether /proc/self/fd tells where an open file is (Linux); probed on first use. */
  private procFd: boolean | undefined;

  constructor(
    readonly root: string,
    private readonly url: string,
  ) {}

  abs(rel: TreePath): string {
    return path.join(this.root, ...rel);
  }

  /**
   * Opens a file for reading without following a link anywhere below the root. Undefined when
   * nothing is there; throws the link refusal when a link is on the way.
   */
  async openForRead(rel: TreePath): Promise<{ handle: fs.FileHandle; stat: Stats } | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.abs(rel), OPEN_READ);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      if (code === 'ELOOP') throw await this.refusal(rel);
      throw e;
    }
    try {
      await this.assertOpenedAt(handle, rel);
      return { handle, stat: await handle.stat() };
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /**
   * The entry at `rel` (not following it), after checking that its directory is inside the
   * root. Undefined when nothing is there; the link refusal when it, or a directory on the way,
   * is a link.
   */
  async lstatEntry(rel: TreePath): Promise<Stats | undefined> {
    if ((await this.checkDir(rel.slice(0, -1))) === 'missing') return undefined;
    return this.lstatLast(rel);
  }

  /** lstat of the last segment only (its directory already checked); a link is refused. */
  async lstatLast(rel: TreePath): Promise<Stats | undefined> {
    let st: Stats;
    try {
      st = await fs.lstat(this.abs(rel));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw e;
    }
    if (st.isSymbolicLink()) throw this.linkRefusal(rel.join('/'));
    return st;
  }

  /**
   * 'ok' when `rel` resolves to itself under the root (no link on the way); 'missing' when it
   * does not exist (or a file is where a directory would be); the link refusal otherwise.
   */
  async checkDir(rel: TreePath): Promise<'ok' | 'missing'> {
    if (rel.length === 0) return 'ok';
    let real: string;
    try {
      real = await fs.realpath(this.abs(rel));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
      if (code === 'ELOOP') throw await this.refusal(rel);
      throw e;
    }
    if (real === path.join(await this.realRoot(), ...rel)) return 'ok';
    throw await this.refusal(rel);
  }

  /**
   * Makes `rel` an existing directory inside the root: new directories 0700 whatever the umask,
   * never created through a link. A file in the way fails with the fs error (EEXIST/ENOTDIR)
   * for the caller to explain; a directory removed meanwhile, with ENOENT (retry).
   */
  async ensureDir(rel: TreePath): Promise<void> {
    if ((await this.checkDir(rel)) === 'ok') return;
    // A dangling link does not resolve either: look for one before mkdir -p walks through it.
    const link = await this.firstLink(rel);
    if (link !== undefined) throw this.linkRefusal(link);
    await mkdirPrivate(this.abs(rel));
    if ((await this.checkDir(rel)) === 'missing') {
      throw Object.assign(new Error(`${this.abs(rel)} was removed while it was being created`), { code: 'ENOENT' });
    }
  }

  /**
   * Throws the link refusal unless `handle` is open on the file at `rel` below the root (not
   * elsewhere through a link). Where /proc is missing, checks the directory's real path instead.
   */
  async assertOpenedAt(handle: fs.FileHandle, rel: TreePath): Promise<void> {
    const expected = path.join(await this.realRoot(), ...rel);
    if (this.procFd !== false) {
      let actual: string | undefined;
      try {
        actual = await fs.readlink(`/proc/self/fd/${handle.fd}`);
        this.procFd = true;
      } catch {
        if (this.procFd === undefined) this.procFd = false;
      }
      if (actual !== undefined) {
        // A writer may have renamed a new version over it since the open: the kernel then
        // reports the old file's last name with " (deleted)".
        if (actual === expected || actual === `${expected} (deleted)`) return;
        throw await this.refusal(rel);
      }
    }
    if ((await this.checkDir(rel.slice(0, -1))) !== 'ok') throw await this.refusal(rel);
  }

  /** The refusal for a link at or above `rel`, naming the link when it can be found. */
  async refusal(rel: TreePath): Promise<StorageError> {
    return this.linkRefusal((await this.firstLink(rel)) ?? rel.join('/'));
  }

  linkRefusal(link: string): StorageError {
    return new StorageError(
      'AccessDenied',
      `${this.url}: "${link}" inside the bucket directory is a symbolic link, and a local bucket never follows links (one could lead outside it); remove the link, or put the real file or directory there`,
      { key: link },
    );
  }

  /** The root with its own links resolved (the user chose it); cached once it exists. */
  private async realRoot(): Promise<string> {
    this.realRootCache ??= await fs.realpath(this.root);
    return this.realRootCache;
  }

  /** The first segment prefix of `rel` that is a link ("a/b"), or undefined. */
  private async firstLink(rel: TreePath): Promise<string | undefined> {
    for (let i = 1; i <= rel.length; i++) {
      let st: Stats;
      try {
        st = await fs.lstat(this.abs(rel.slice(0, i)));
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) return rel.slice(0, i).join('/');
      if (!st.isDirectory()) return undefined;
    }
    return undefined;
  }
}
