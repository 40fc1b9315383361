/**
 * Files Offsite writes for the user: private (0600 files, 0700 directories) whatever the umask,
 * never written through a symlink someone planted, and durable (fsync of the file, then of the
 * directory that holds its name, so a crash right after a rename keeps the new name).
 */
import { constants, type Mode } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Flags for a new private file: created here, never an existing file or a symlink's target. */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes a rename or a new name in `dir` durable (POSIX: the name lives in the directory). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * `mkdir -p` whose new directories are 0700 whatever the umask. Directories that already exist
 * keep their mode (they may be the user's own, such as a home directory).
 */
export async function mkdirPrivate(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  const first = await mkdir(abs, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  // mkdir's mode is filtered by the umask; set it exactly on each directory this call created.
  for (let d = abs; ; d = path.dirname(d)) {
    await chmod(d, PRIVATE_DIR_MODE);
    if (d === first || d === path.dirname(d)) break;
  }
}

/**
 * A new file, open for writing, mode 0600 whatever the umask. Fails with EEXIST if anything is
 * at `file` already (a symlink included), so it never writes through a link.
 */
export async function openNewPrivateFile(file: string, mode: Mode = PRIVATE_FILE_MODE): Promise<FileHandle> {
  const fh = await open(file, CREATE_NEW, mode);
  try {
    await fh.chmod(mode);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return fh;
}

/**
 * Writes `data` to `file` atomically: a private temp file beside it (O_EXCL, O_NOFOLLOW), fsync,
 * rename over `file` (which replaces a symlink at `file` rather than following it), fsync of the
 * directory. Readers see the old content or the new, never a part.
 */
export async function writePrivateFile(file: string, data: string | Uint8Array, opts: { mode?: Mode } = {}): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await openNewPrivateFile(temp, opts.mode ?? PRIVATE_FILE_MODE);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, file);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

/** Renames `from` to `to` and makes the new name durable. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await rename(from, to);
  await fsyncDir(path.dirname(to));
}

/**
 * A new directory `PREFIXxxxxxx` (random suffix), 0700 whatever the umask, for work in progress
 * that no other user may look into. Created atomically: never an existing directory or a link.
 */
export async function mkdtempPrivate(prefix: string): Promise<string> {
  const dir = await mkdtemp(prefix);
  await chmod(dir, PRIVATE_DIR_MODE);
  return dir;
}
