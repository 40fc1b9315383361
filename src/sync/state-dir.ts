// The state directory holds the account's secret (and an HTTP server's token): it must be this
// user's alone, whoever created it and however it was created. Checked on every open, not only
// when Offsite creates it: a directory made beforehand with 0777 (or by an older Offsite, or
// restored from a backup) is tightened to 0700, a directory or file that belongs to another user
// is refused (that user could read or replace the secret), and a symbolic link where one of
// Offsite's files belongs is refused rather than followed (it could send the secret, or the
// database, wherever its planter chose).
import { chmodSync, closeSync, constants, lstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../files/index.js';
import { SyncError } from './errors.js';

/** The server token's file in a state directory (config.ts writes it; secureStateDir checks it). */
export const SERVER_TOKEN_FILE = 'server-token';

function lstatIfExists(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

const unsafe = (message: string) => new SyncError('UnsafeStateDir', message);

/**
 * Makes `dir` (which exists) private to this user and checks Offsite's `files` in it: 0700 on the
 * directory, 0600 on the files that exist. Throws UnsafeStateDir for a directory or file owned by
 * another user, and for a file that is a symbolic link or not a regular file.
 */
export function secureStateDir(dir: string, files: readonly string[]): void {
  // No owners on Windows (no getuid): only the modes are set there, as far as they apply.
  const me = process.getuid?.();
  const link = lstatSync(dir);
  // A symlink to the directory is fine if it is the user's own (or the system's): another user could point it elsewhere later.
  if (link.isSymbolicLink() && me !== undefined && link.uid !== me && link.uid !== 0) {
    throw unsafe(`${dir} is a symbolic link that belongs to user ${link.uid}, not to you (${me}): that user could point it at a directory of theirs; use another --dir (OFFSITE_SYNC_DIR)`);
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw unsafe(`${dir} is not a directory; use another --dir (OFFSITE_SYNC_DIR)`);
  if (me !== undefined && st.uid !== me) {
    throw unsafe(`${dir} belongs to user ${st.uid}, not to you (${me}): a sync state directory holds the account's secret and must be yours alone; use another --dir (OFFSITE_SYNC_DIR)`);
  }
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
  for (const name of files) {
    const file = path.join(dir, name);
    const f = lstatIfExists(file);
    if (!f) continue;
    if (f.isSymbolicLink() || !f.isFile()) {
      throw unsafe(`${file} is ${f.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: Offsite neither reads nor writes through it (it may have been planted to capture the secret); remove it, and check who can write to ${dir}`);
    }
    if (me !== undefined && f.uid !== me) throw unsafe(`${file} belongs to user ${f.uid}, not to you (${me}): remove it, and check who can write to ${dir}`);
    if ((f.mode & 0o077) !== 0) chmodSync(file, PRIVATE_FILE_MODE);
  }
}

/** Reads a file of the state directory, never through a symbolic link. */
export function readPrivateFile(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
