/**
 * Secrets at rest for the console: AES-256-GCM under one 32-byte key kept in a 0600 file.
 *
 * Format of a sealed value: `v1.<keyId>.<nonce b64url>.<ciphertext+tag b64url>`.
 * - a fresh 12-byte random nonce on every seal (never derived from the row: two fields under
 *   one key and one nonce would leak their XOR);
 * - associated data `offsite-console|v1|<table>|<field>|<rowId>|<keyId>`: a ciphertext copied
 *   to another row or field, or presented under another key, fails to open;
 * - keyId = the first 8 hex digits of SHA-256(key), so that a value names the key it needs and a
 *   wrong key is told apart from damaged data without trying it.
 *
 * The key file holds the key as 64 hex digits and a newline (readable, copyable, no stray
 * bytes from an editor); 32 raw bytes are accepted too.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, mkdirPrivate, writePrivateFile } from '../files/index.js';
import { ConsoleError } from './errors.js';

export const SECRET_FORMAT_VERSION = 'v1';
export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** The environment variable naming a key file kept elsewhere (which must then exist). */
export const CONSOLE_KEY_FILE_ENV = 'OFFSITE_CONSOLE_KEY_FILE';
export const DEFAULT_KEY_FILE = 'console.key';

export interface ConsoleKey {
  /** The file the key was read from (named in messages; the key itself never is). */
  readonly file: string;
  readonly keyId: string;
  readonly key: Buffer;
}

/** Where a sealed value lives; bound into its associated data. */
export interface SealedPlace {
  table: string;
  field: string;
  rowId: string | number;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export function makeKey(file: string, key: Buffer): ConsoleKey {
  if (key.length !== KEY_BYTES) throw new ConsoleError('InvalidKey', `${file}: a console key is ${KEY_BYTES} bytes (64 hex digits)`);
  return { file, key, keyId: keyIdOf(key) };
}

function aad(place: SealedPlace, keyId: string): Buffer {
  return Buffer.from(`offsite-console|${SECRET_FORMAT_VERSION}|${place.table}|${place.field}|${place.rowId}|${keyId}`, 'utf8');
}

export function seal(key: ConsoleKey, place: SealedPlace, plaintext: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(place, key.keyId));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${SECRET_FORMAT_VERSION}.${key.keyId}.${nonce.toString('base64url')}.${body.toString('base64url')}`;
}

/** The key id a sealed value names, or undefined when it is not one of ours. */
export function sealedKeyId(sealed: string): string | undefined {
  const m = /^v1\.([0-9a-f]{8})\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.exec(sealed);
  return m?.[1];
}

/**
 * Opens a sealed value. WrongKey when it names another key; Tampered when it fails to
 * authenticate (altered, or moved from another row or field). Neither message holds a byte of it.
 */
export function open(key: ConsoleKey, place: SealedPlace, sealed: string): string {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== SECRET_FORMAT_VERSION) {
    throw new ConsoleError('Tampered', `${place.table}.${place.field} of row ${place.rowId} is not a sealed value of format ${SECRET_FORMAT_VERSION}`);
  }
  const [, keyId, nonceText, bodyText] = parts as [string, string, string, string];
  if (keyId !== key.keyId) {
    throw new ConsoleError('WrongKey', `${place.table}.${place.field} was encrypted under key ${keyId}, and the key in ${key.file} is ${key.keyId}`);
  }
  const nonce = Buffer.from(nonceText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new ConsoleError('Tampered', `${place.table}.${place.field} of row ${place.rowId} is truncated`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(place, keyId));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new ConsoleError('Tampered', `${place.table}.${place.field} of row ${place.rowId} does not decrypt with the key in ${key.file}: it was altered or copied from elsewhere`);
  }
}

/** The key file in use: $OFFSITE_CONSOLE_KEY_FILE, else DATA_DIR/console.key. */
export function keyFilePath(dataDir: string, env: NodeJS.ProcessEnv = process.env): { file: string; explicit: boolean } {
  const named = env[CONSOLE_KEY_FILE_ENV];
  return named ? { file: path.resolve(named), explicit: true } : { file: path.join(dataDir, DEFAULT_KEY_FILE), explicit: false };
}

/** Reads a key file: 64 hex digits (whitespace around them ignored) or 32 raw bytes. */
export async function readKeyFile(file: string): Promise<ConsoleKey> {
  const raw = await readFile(file);
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return makeKey(file, Buffer.from(text, 'hex'));
  if (raw.length === KEY_BYTES) return makeKey(file, raw);
  throw new ConsoleError('InvalidKey', `${file} is not a console key: it must hold ${KEY_BYTES} bytes as 64 hex digits`);
}

/**
 * The key: read from its file; the default file is created (0600, random) when missing, a
 * file named by $OFFSITE_CONSOLE_KEY_FILE must exist. `created` says a new key was made.
 */
export async function loadOrCreateKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<{ key: ConsoleKey; created: boolean }> {
  const { file, explicit } = keyFilePath(dataDir, env);
  try {
    return { key: await readKeyFile(file), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (explicit) throw new ConsoleError('KeyMissing', `the console key file ${file} (from $${CONSOLE_KEY_FILE_ENV}) does not exist`);
  }
  await mkdirPrivate(path.dirname(file));
  const key = makeKey(file, randomBytes(KEY_BYTES));
  await writePrivateFile(file, `${key.key.toString('hex')}\n`);
  return { key, created: true };
}

/** A new random key, not yet written anywhere (rekey). */
export function randomKey(file: string): ConsoleKey {
  return makeKey(file, randomBytes(KEY_BYTES));
}

/** Where a rekey puts the new key before the database switches to it (see rekey in store.ts). */
export function pendingKeyFile(file: string): string {
  return `${file}.new`;
}

/** Writes `key` to a private file next to `file`, durably, without replacing `file` yet. */
export async function writePendingKey(file: string, key: ConsoleKey): Promise<string> {
  const pending = pendingKeyFile(file);
  await rm(pending, { force: true });
  await writePrivateFile(pending, `${key.key.toString('hex')}\n`);
  return pending;
}

/** Moves the pending key over the key file (atomic rename, directory fsynced). */
export async function commitPendingKey(file: string): Promise<void> {
  await rename(pendingKeyFile(file), file);
  await fsyncDir(path.dirname(file));
}
