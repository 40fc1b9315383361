// Session trees for archive tests: nested files with random content, and a hash of a whole tree
// to compare an original with a restore.
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pseudoRandomStream, sha256 } from '../support/data.js';

export interface SessionSpec {
  year: number;
  id: string;
  /** Size of the big raw file. */
  bigBytes?: number;
}

/** ROOT/YEAR/ID/ with raw/*.fits, nested dirs, an empty file, a symlink, unicode names. */
export async function makeSessions(root: string, specs: SessionSpec[]): Promise<void> {
  for (const s of specs) {
    const dir = path.join(root, String(s.year), s.id);
    await mkdir(path.join(dir, 'raw'), { recursive: true });
    await mkdir(path.join(dir, 'calib/darks/deep'), { recursive: true });
    await pipeline(pseudoRandomStream(s.bigBytes ?? 3 * 1024 * 1024, `${s.id}-big`), createWriteStream(path.join(dir, 'raw', 'light_0001.fits')));
    await pipeline(pseudoRandomStream(200_000, `${s.id}-small`), createWriteStream(path.join(dir, 'raw', 'light_0002.fits')));
    await pipeline(pseudoRandomStream(70_001, `${s.id}-dark`), createWriteStream(path.join(dir, 'calib/darks/deep', 'dark 1 ü.fits')));
    await writeFile(path.join(dir, 'empty.dat'), '');
    await writeFile(path.join(dir, 'session.log'), `session ${s.id}\n`.repeat(100));
    await symlink('raw/light_0001.fits', path.join(dir, 'latest.fits'));
    // Notes: one inside the session directory, one beside it.
    await writeFile(path.join(dir, `${s.id}_observing.md`), `# ${s.id}\nclear skies\n`);
    await writeFile(path.join(root, String(s.year), `${s.id}-summary.md`), `summary of ${s.id}\n`);
  }
}

/** path -> sha256 (files), "dir", or "-> target" (symlinks), for every entry below `dir`. */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = path.join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(p);
      if (st.isSymbolicLink()) out[r] = `-> ${await readlink(p)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        await walk(p, r);
      } else out[r] = sha256(await readFile(p));
    }
  };
  await walk(dir, '');
  return out;
}
