import { Header, Pax } from 'tar';

export const TAR_BLOCK = 512;

export interface TarHeaderFields {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink';
  mode: number;
  size: number;
  mtime: Date;
  linkpath?: string;
}

/**
 * The ustar header block of one entry (node-tar's encoder), preceded by a pax extended header
 * when a field does not fit ustar: a path or link over 100/155 bytes, a non-ASCII name, a size
 * of 8 GiB or more. No uid, gid or user names (as node-tar's `portable`): the archive does not
 * depend on the accounts of the machine that made it, and restoring gives the files to whoever
 * extracts them.
 */
export function tarHeader(fields: TarHeaderFields): Buffer {
  const header = new Header({ ...fields });
  const needPax = header.encode();
  const block = header.block;
  if (!block) throw new Error(`tar header for "${fields.path}" was not encoded`);
  if (!needPax) return block;
  const pax = new Pax({ path: fields.path, linkpath: fields.linkpath, size: fields.size, mtime: fields.mtime }).encode();
  return Buffer.concat([pax, block]);
}

/** Zero bytes that round an entry body of `size` bytes up to whole blocks. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
}

/** Two zero blocks end a tar archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * TAR_BLOCK);
}
