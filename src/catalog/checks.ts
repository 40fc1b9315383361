// Argument checks for what the catalog stores. SQLite would accept almost anything; a wrong
// value found here is a bug reported at its source instead of a puzzle in `archive status`.
import { CatalogError } from './errors.js';

export function nowIso(): string {
  return new Date().toISOString();
}

export function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new CatalogError('InvalidInput', `${name} must be a non-negative integer, got ${value}`);
}

export function checkSha256(value: string): void {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new CatalogError('InvalidInput', `sha256 must be 64 lower-case hex digits, got "${value}"`);
}

// Query parameters that carry credentials in the URLs people paste (presigned URLs, tokens).
const SECRET_PARAM = /^(x-amz-(signature|credential|security-token)|secret.*|.*secret|.*password|.*token|access_?key.*|sig|signature)$/i;

/**
 * Destinations are recorded and printed in status output, so a credential in one would leak.
 * Offsite's own storage URLs carry no secrets (credentials come from the environment); this
 * refuses the ones that do rather than scrubbing them, so two spellings of a destination never
 * end up as two rows.
 */
export function checkDestination(destination: string): void {
  if (destination.length === 0) throw new CatalogError('InvalidInput', 'destination must be a storage URL, got an empty string');
  let url: URL;
  try {
    url = new URL(destination);
  } catch {
    return; // a plain local path
  }
  const secretParams = [...url.searchParams.keys()].filter((k) => SECRET_PARAM.test(k));
  if (url.password !== '' || secretParams.length > 0) {
    const what = url.password !== '' ? 'a password' : `the parameter(s) ${secretParams.join(', ')}`;
    throw new CatalogError('InvalidInput', `destination URL carries ${what}: the catalog never stores secrets; pass the storage URL without credentials (storage.url)`);
  }
}
