/** One entry of a packed directory, as it is stored in the tar. */
export interface FileEntry {
  /** Path inside the tar, '/'-separated, starting with the packed directory's name, no trailing slash: "S1/raw/a.fits". */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** Bytes of content (0 for directories and symlinks). */
  size: number;
  /** Hex SHA-256 of the content; files only. */
  sha256?: string;
  /** Permission bits as stored (mode & 0o7777). */
  mode: number;
  /** Modification time as stored, ISO 8601, whole seconds. */
  mtime: string;
  /** Symlinks only: the target, verbatim. */
  linkTarget?: string;
}

export interface UnpackReport {
  /** Regular files written (hard links included). */
  files: number;
  /** Symbolic links created. */
  symlinks: number;
  /** Bytes of file content written. */
  bytes: number;
  /** Expected entries found and matching (0 when no manifest was given). */
  checked: number;
}
