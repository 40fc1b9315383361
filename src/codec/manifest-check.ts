import { normalizeEntryPath } from './unpack-safety.js';
import type { FileEntry } from './types.js';

/** Problems kept for the error; the count is always exact. */
const MAX_PROBLEMS = 100;

/**
 * Compares what an extraction wrote with the manifest it should match: every manifest entry
 * present with the same type, files with the same size and SHA-256 (hashed as they were
 * written), symlinks with the same target, and nothing extra.
 */
export class ManifestCheck {
  readonly #expected = new Map<string, FileEntry>();
  /** Path → the problem found with it, or null when it matched. A later duplicate entry wins, as in tar. */
  readonly #seen = new Map<string, string | null>();
  /** Kept so a hard link can be checked as the file it links to. */
  readonly #digests = new Map<string, { size: number; sha256: string }>();

  constructor(expected: readonly FileEntry[]) {
    for (const e of expected) this.#expected.set(normalizeEntryPath(e.path), e);
  }

  file(rel: string, size: number, sha256: string): void {
    this.#digests.set(rel, { size, sha256 });
    const exp = this.#expected.get(rel);
    let problem = this.#typeProblem(rel, 'file', exp);
    if (!problem && exp) {
      if (exp.size !== size) problem = `${rel}: ${size} bytes, the manifest says ${exp.size}`;
      else if (exp.sha256 !== undefined && exp.sha256 !== sha256) problem = `${rel}: SHA-256 ${sha256} differs from the manifest's ${exp.sha256}`;
    }
    this.#seen.set(rel, problem);
  }

  hardlink(rel: string, targetRel: string): void {
    const d = this.#digests.get(targetRel);
    if (d) this.file(rel, d.size, d.sha256);
    else this.#seen.set(rel, `${rel}: a hard link to ${targetRel}, whose content was not seen`);
  }

  directory(rel: string): void {
    this.#seen.set(rel, this.#typeProblem(rel, 'directory', this.#expected.get(rel)));
  }

  symlink(rel: string, target: string): void {
    const exp = this.#expected.get(rel);
    let problem = this.#typeProblem(rel, 'symlink', exp);
    if (!problem && exp && exp.linkTarget !== target) problem = `${rel}: links to "${target}", the manifest says "${exp.linkTarget}"`;
    this.#seen.set(rel, problem);
  }

  result(): { checked: number; problems: string[]; problemCount: number } {
    const problems: string[] = [];
    let problemCount = 0;
    let checked = 0;
    const add = (p: string): void => {
      problemCount++;
      if (problems.length < MAX_PROBLEMS) problems.push(p);
    };
    for (const problem of this.#seen.values()) {
      if (problem === null) checked++;
      else add(problem);
    }
    for (const rel of this.#expected.keys()) if (!this.#seen.has(rel)) add(`${rel}: in the manifest but not in the archive`);
    return { checked, problems, problemCount };
  }

  #typeProblem(rel: string, type: FileEntry['type'], exp: FileEntry | undefined): string | null {
    if (!exp) return `${rel}: in the archive but not in the manifest`;
    if (exp.type !== type) return `${rel}: a ${type} in the archive, a ${exp.type} in the manifest`;
    return null;
  }
}
