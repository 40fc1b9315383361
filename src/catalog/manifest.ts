/**
 * The archive manifest: a small JSON object the archive engine writes beside each archive
 * (`<key>.manifest.json`, STANDARD storage class). It is the truth the catalog is rebuilt from,
 * and what a user without Offsite reads to know what an archive holds and how to open it, so
 * it names everything in plain words and never holds a secret.
 *
 * Unknown fields are dropped rather than refused, so a manifest from a newer Offsite that only
 * added fields still reads; a new `version` is refused.
 */
import { z } from 'zod';
import { CatalogError } from './errors.js';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits');
const count = z.number().int().nonnegative();
const isoTime = z.iso.datetime({ offset: true });

const fileEntry = z
  .object({
    /** Path inside the archive, as tar stores it. */
    path: z.string().min(1),
    type: z.enum(['file', 'directory', 'symlink']),
    size: count,
    sha256: sha256Hex.optional(),
    mode: count,
    mtime: isoTime,
    linkTarget: z.string().optional(),
  })
  .refine((f) => f.type !== 'symlink' || f.linkTarget !== undefined, { message: 'a symlink needs linkTarget', path: ['linkTarget'] });

const encryption = z
  .object({
    type: z.literal('age'),
    recipients: z.array(
      // Public recipients only: a manifest is readable by anyone with bucket access.
      z.string().min(1).refine((r) => !/^AGE-SECRET-KEY-/i.test(r), 'an age secret key is not a recipient; only public recipients belong in a manifest'),
    ),
    passphrase: z.boolean(),
  })
  .refine((e) => e.recipients.length > 0 || e.passphrase, { message: 'encrypted to no recipient and no passphrase', path: ['recipients'] });

export const archiveManifestSchema = z.object({
  format: z.literal('offsite-archive-manifest'),
  version: z.literal(1),
  tool: z.object({ name: z.literal('offsite'), version: z.string().min(1) }),
  sessionId: z.string().min(1),
  year: z.number().int().min(1).max(9999),
  key: z.string().min(1),
  createdAt: isoTime,
  compression: z.enum(['none', 'gzip']),
  encryption: encryption.nullable(),
  object: z.object({ size: count, sha256: sha256Hex, etag: z.string(), storageClass: z.string().min(1) }),
  source: z.object({ root: z.string(), files: count, bytes: count }),
  files: z.array(fileEntry),
  /**
   * HMAC-SHA256 of the rest of the manifest (its canonical JSON) by the user's manifest key,
   * "v1.KEYID.MAC" (see codec/manifest-key.ts): what lets a restore from the bucket alone tell a
   * manifest Offsite wrote from one anyone with write access put there. Absent in manifests of
   * older versions, which read as unsigned.
   */
  mac: z.string().optional(),
});

export type ArchiveManifest = z.infer<typeof archiveManifestSchema>;
export type ManifestFileEntry = ArchiveManifest['files'][number];

export const MANIFEST_FORMAT = 'offsite-archive-manifest';
export const MANIFEST_VERSION = 1;

/** Where the manifest of the archive at `archiveKey` lives. */
export function manifestKeyFor(archiveKey: string): string {
  return `${archiveKey}.manifest.json`;
}

/** `files[3].sha256`, as a reader would write it. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(root)';
}

/**
 * Validate a manifest: a parsed JSON value, or JSON text. Throws InvalidManifest naming the
 * first offending field (and `where` it came from, e.g. the object key, when given).
 */
export function parseManifest(json: unknown, where?: string): ArchiveManifest {
  const from = where ? ` ${where}` : '';
  let value = json;
  if (typeof json === 'string' || Buffer.isBuffer(json)) {
    try {
      value = JSON.parse(json.toString());
    } catch (e) {
      throw new CatalogError('InvalidManifest', `archive manifest${from} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  }
  const parsed = archiveManifestSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue ? formatPath(issue.path) : '(root)';
  let hint = '';
  if (field === 'version' && value !== null && typeof value === 'object' && typeof (value as { version?: unknown }).version === 'number') {
    hint = '; it was written by a newer Offsite: upgrade Offsite to read it';
  }
  const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problem(s))` : '';
  throw new CatalogError('InvalidManifest', `invalid archive manifest${from}: ${field}: ${issue?.message ?? 'invalid'}${more}${hint}`, { cause: parsed.error });
}
