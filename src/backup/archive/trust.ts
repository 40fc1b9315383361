/**
 * What a restore or a full verify may believe about an archive. The bucket is not trusted:
 * whoever can write to it (leaked S3 credentials, the provider) can replace an archive and
 * rewrite the manifest beside it, and age encryption proves nothing (recipients are public).
 *
 * - The object's size, SHA-256, encryption and compression come from the catalog row. A row
 *   this catalog's upload wrote ('local') is believed; so is one `catalog rebuild` read from a
 *   manifest the user's manifest key authenticated. Any other rebuilt row is checked again
 *   here, against the manifest as it is now, with the key as it is now: forged → refused;
 *   signed by a key that is not here → refused, naming the variable that points at it;
 *   unsigned → refused unless the user passes --trust-unsigned-manifests, and even then not
 *   when it says "not encrypted" while the configuration encrypts (a downgrade).
 * - The manifest's file list (checked file by file on extraction) is used only when the
 *   manifest is the one the catalog recorded (same SHA-256), or is authenticated by the key,
 *   and agrees with the row. Otherwise it is left out and the caller says so: the object's
 *   SHA-256 against the catalog still proves the archive is the one uploaded.
 */
import type { ArchiveRow, ManifestFileEntry } from '../../catalog/index.js';
import { checkManifestMac, describeMacCheck, type ManifestKey, type ManifestMacCheck } from '../../codec/index.js';
import type { Storage } from '../../storage/index.js';
import { ArchiveError } from './errors.js';
import { readStoredManifest, type StoredManifest } from './manifest-io.js';

export const TRUST_UNSIGNED_FLAG = '--trust-unsigned-manifests';

export interface TrustOptions {
  /** The user's manifest key, when there is one here. */
  manifestKey: ManifestKey | undefined;
  /** Accept rows rebuilt from unsigned manifests (the user's explicit choice). */
  trustUnsigned: boolean;
  /** The configuration encrypts archives (recipients or a passphrase). */
  configEncrypted: boolean;
}

export interface ArchiveTrust {
  /** What vouches for the row's facts now. */
  basis: 'local' | 'authentic' | 'unsigned';
  /** The file list to check extracted files against; undefined when the manifest cannot be used. */
  files: ManifestFileEntry[] | undefined;
  /** Why the manifest was not used (it was altered, or is missing), for the user. */
  manifestProblem: string | undefined;
  /** Lines the user should read (unauthenticated manifest accepted, manifest not used). */
  warnings: string[];
}

/**
 * Decides what to believe about a done row (see the file comment), reading its manifest from
 * the bucket. Throws ArchiveError (ManifestForged, ManifestUnsigned, ManifestKeyMissing,
 * ArchiveCorrupted) when the row itself cannot be believed; nothing has been downloaded but
 * the manifest then.
 */
export async function assessArchive(storage: Storage, row: ArchiveRow, opts: TrustOptions): Promise<ArchiveTrust> {
  let stored: StoredManifest | undefined;
  let readError: string | undefined;
  try {
    stored = await readStoredManifest(storage, row.manifestKey);
  } catch (e) {
    readError = (e as Error).message;
  }
  const what = `manifest ${row.manifestKey}`;
  const mac = stored ? checkManifestMac(opts.manifestKey, stored.record, stored.mac) : undefined;
  const recorded = row.manifestSha256;
  const sameAsRecorded = stored !== undefined && recorded !== null && stored.sha256 === recorded;
  const disagreement = stored ? disagreementWithRow(stored, row) : undefined;
  const warnings: string[] = [];

  let basis: ArchiveTrust['basis'];
  if (row.manifestAuth === 'local' || row.manifestAuth === 'authentic') {
    basis = row.manifestAuth;
  } else {
    // Facts read off a manifest nothing authenticated when the catalog was rebuilt.
    if (!stored) throw new ArchiveError('ArchiveCorrupted', `${what}, which the catalog was rebuilt from, cannot be read (${readError}); nothing vouches for this archive`);
    if (!sameAsRecorded) {
      throw new ArchiveError('ManifestForged', `${what} changed since the catalog was rebuilt from it; run "offsite archive catalog rebuild" again to check it`);
    }
    basis = acceptRebuilt(mac!, what, row, opts);
    if (basis === 'unsigned') warnings.push(`${describeMacCheck(mac!, what)}; accepted because of ${TRUST_UNSIGNED_FLAG}`);
  }

  const usable =
    stored !== undefined &&
    disagreement === undefined &&
    (sameAsRecorded || mac!.status === 'authentic' || (recorded === null && mac!.status !== 'forged' && mac!.status !== 'other-key'));
  if (usable) return { basis, files: stored!.manifest.files, manifestProblem: undefined, warnings };

  const since = basis === 'local' ? 'since it was uploaded' : 'since the catalog was rebuilt from it';
  const why = !stored
    ? `cannot be read (${readError})`
    : disagreement
      ? `was altered in the bucket ${since}: ${disagreement}`
      : mac!.status === 'forged'
        ? `was altered in the bucket: it does not match its MAC`
        : `was altered in the bucket ${since} (its SHA-256 is not the one the catalog recorded)`;
  const manifestProblem = `${what} ${why}`;
  warnings.push(`${manifestProblem}; it was not used: the archive is checked against the SHA-256 recorded in the catalog`);
  return { basis, files: undefined, manifestProblem, warnings };
}

/** A rebuilt row whose manifest is unchanged: what its MAC check, made now, allows. */
function acceptRebuilt(mac: ManifestMacCheck, what: string, row: ArchiveRow, opts: TrustOptions): 'authentic' | 'unsigned' {
  switch (mac.status) {
    case 'authentic':
      return 'authentic';
    case 'forged':
      throw new ArchiveError('ManifestForged', `${describeMacCheck(mac, what)}; it is not restored`);
    case 'no-key':
    case 'other-key':
      throw new ArchiveError('ManifestKeyMissing', `${describeMacCheck(mac, what)}; until then nothing proves Offsite wrote it, and it is not restored`);
    case 'unsigned':
      if (!opts.trustUnsigned) {
        throw new ArchiveError(
          'ManifestUnsigned',
          `${describeMacCheck(mac, what)} (an older Offsite wrote no MAC, but so could anyone with write access to the bucket); pass ${TRUST_UNSIGNED_FLAG} to accept it`,
        );
      }
      if (opts.configEncrypted && !row.encrypted) {
        throw new ArchiveError(
          'ManifestForged',
          `${what} carries no MAC and says the archive is not encrypted, while the configuration encrypts archives: refused even with ${TRUST_UNSIGNED_FLAG}, as that is what an attacker who replaced the archive would write. If it really was archived unencrypted, restore it with "aws s3 cp" and "tar -x"`,
        );
      }
      return 'unsigned';
  }
}

/** How a manifest contradicts the catalog row about the object, or undefined when it agrees. */
function disagreementWithRow({ manifest: m }: StoredManifest, row: ArchiveRow): string | undefined {
  if (m.key !== row.key) return `it describes ${m.key}`;
  if (m.sessionId !== row.sessionId) return `it names session ${m.sessionId}, the catalog ${row.sessionId}`;
  if (m.object.sha256 !== row.sha256 || m.object.size !== row.size) return `it gives the archive SHA-256 ${m.object.sha256} (${m.object.size} bytes), the catalog ${row.sha256} (${row.size} bytes)`;
  if ((m.encryption !== null) !== row.encrypted) return `it says the archive is ${m.encryption ? '' : 'not '}encrypted, the catalog that it is ${row.encrypted ? '' : 'not '}`;
  if (m.compression !== row.compression) return `it says compression ${m.compression}, the catalog ${row.compression}`;
  return undefined;
}
