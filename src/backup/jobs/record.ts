/**
 * What a backup is, and how a restore tells the one Offsite made from one somebody else put in
 * its place. The facts (job, name, size, SHA-256, encryption, compression) are recorded in the
 * catalog when the local copy is written, and go with the object as metadata, with a MAC by
 * the user's manifest key over them (`offsite-mac`): a restore with the catalog checks against
 * the catalog; a restore from the bucket alone accepts the metadata only when its MAC is
 * authentic. The SHA-256 in the metadata alone proves nothing: whoever can write the object can
 * write its metadata.
 */
import type { BackupRecord, BackupRecordInput, Compression } from '../../catalog/index.js';
import { checkManifestMac, type ManifestKey, type ManifestMacCheck } from '../../codec/index.js';
import type { BackupJob } from './config.js';

export const SHA256_METADATA = 'offsite-sha256';
export const MAC_METADATA = 'offsite-mac';
const JOB_METADATA = 'offsite-job';
const ENCRYPTED_METADATA = 'offsite-encrypted';
const COMPRESSION_METADATA = 'offsite-compression';

/** The facts of a backup: what the catalog records, and what the MAC covers. */
export type BackupFacts = BackupRecordInput;

/** The record the MAC covers: exactly these fields, so nothing else in the metadata counts. */
function macRecord(f: BackupFacts): Record<string, unknown> {
  return { kind: 'offsite backup', job: f.job, name: f.name, size: f.size, sha256: f.sha256, encrypted: f.encrypted, compression: f.compression };
}

export function factsOfJob(job: BackupJob, name: string, size: number, sha256: string): BackupFacts {
  return { job: job.name, name, size, sha256, encrypted: job.recipients.length > 0, compression: job.compress };
}

export function factsOfRecord(r: BackupRecord): BackupFacts {
  return { job: r.job, name: r.name, size: r.size, sha256: r.sha256, encrypted: r.encrypted, compression: r.compression };
}

/** The object's metadata: the facts, and their MAC when a key is given. */
export function backupMetadata(facts: BackupFacts, key: ManifestKey | undefined): Record<string, string> {
  return {
    [SHA256_METADATA]: facts.sha256,
    [JOB_METADATA]: facts.job,
    [ENCRYPTED_METADATA]: facts.encrypted ? 'true' : 'false',
    [COMPRESSION_METADATA]: facts.compression,
    ...(key ? { [MAC_METADATA]: key.mac(macRecord(facts)) } : {}),
  };
}

/**
 * What an object's metadata claims about backup `name` of `job` (the size is the store's), and
 * whether `key` authenticates the claim. Only an `authentic` check makes the facts usable.
 */
export function checkObjectFacts(
  job: BackupJob,
  name: string,
  info: { size: number; metadata: Record<string, string> },
  key: ManifestKey | undefined,
): { facts: BackupFacts; check: ManifestMacCheck } {
  const m = info.metadata;
  const compression: Compression = m[COMPRESSION_METADATA] === 'gzip' ? 'gzip' : 'none';
  const facts: BackupFacts = { job: job.name, name, size: info.size, sha256: m[SHA256_METADATA] ?? '', encrypted: m[ENCRYPTED_METADATA] === 'true', compression };
  return { facts, check: checkManifestMac(key, macRecord(facts), m[MAC_METADATA]) };
}
