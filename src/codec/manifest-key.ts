/**
 * The manifest key: a 32-byte secret the user holds, which authenticates the records Offsite
 * stores beside the data (archive manifests, backup records) with HMAC-SHA256. With it, a
 * restore from the bucket alone (no local catalog) tells a record Offsite wrote from one that a
 * bucket writer forged. Encryption is no such proof: anyone who knows an age recipient (it is
 * public, and written in every manifest) can encrypt a file to it.
 *
 * The key lives in a 0600 file (default ~/.config/offsite/manifest.key, or
 * $OFFSITE_MANIFEST_KEY_FILE), created on first use; keep a copy with the age identity.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mkdirPrivate, openNewPrivateFile } from '../files/index.js';
import { CodecError } from './errors.js';

export const MANIFEST_KEY_ENV = 'OFFSITE_MANIFEST_KEY_FILE';
const KEY_LINE_PREFIX = 'OFFSITE-MANIFEST-KEY-1:';
const MAC_VERSION = 'v1';
const MAC_DOMAIN = 'offsite manifest mac v1\n';

/** A loaded manifest key. The secret stays inside: callers get MACs, never the bytes. */
export class ManifestKey {
  readonly #secret: Buffer;
  /** Names the key without revealing it (16 hex digits), so a record says which key signed it. */
  readonly id: string;

  constructor(
    secret: Buffer,
    /** The file it came from. */
    readonly file: string,
  ) {
    if (secret.length !== 32) throw new CodecError('InvalidIdentity', `${file}: a manifest key is 32 bytes, this one is ${secret.length}`);
    this.#secret = Buffer.from(secret);
    this.id = createHash('sha256').update('offsite manifest key id\n').update(this.#secret).digest('hex').slice(0, 16);
  }

  /** "v1.KEYID.MAC" over the record's canonical JSON (key order does not matter). */
  mac(record: unknown): string {
    const mac = createHmac('sha256', this.#secret).update(MAC_DOMAIN).update(canonicalJson(record)).digest('base64url');
    return `${MAC_VERSION}.${this.id}.${mac}`;
  }

  /** Not the secret: for logs and `util.inspect`. */
  toJSON(): string {
    return `ManifestKey(${this.id})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

export type ManifestMacCheck =
  /** Made by this key over exactly this record. */
  | { status: 'authentic'; keyId: string }
  /** The record carries no MAC (written before MACs existed, or without a key). */
  | { status: 'unsigned' }
  /** The record was signed, but no key was given to check it. */
  | { status: 'no-key'; keyId: string }
  /** Signed by another key than the one given (another installation, or a forgery). */
  | { status: 'other-key'; keyId: string }
  /** Signed with this key's id, but the MAC does not match the record: altered or forged. */
  | { status: 'forged'; keyId: string };

export function checkManifestMac(key: ManifestKey | undefined, record: unknown, mac: string | undefined | null): ManifestMacCheck {
  if (!mac) return { status: 'unsigned' };
  const [version, keyId = '', value] = mac.split('.');
  if (version !== MAC_VERSION || !value || !/^[0-9a-f]{16}$/.test(keyId)) return { status: 'forged', keyId };
  if (!key) return { status: 'no-key', keyId };
  if (keyId !== key.id) return { status: 'other-key', keyId };
  const expected = Buffer.from(key.mac(record));
  const given = Buffer.from(mac);
  return expected.length === given.length && timingSafeEqual(expected, given) ? { status: 'authentic', keyId } : { status: 'forged', keyId };
}

/** One line a user can act on, for a check that is not `authentic`. */
export function describeMacCheck(check: ManifestMacCheck, what: string): string {
  switch (check.status) {
    case 'authentic':
      return `${what}: authenticated by manifest key ${check.keyId}`;
    case 'unsigned':
      return `${what} carries no MAC, so nothing proves Offsite wrote it`;
    case 'no-key':
      return `${what} is signed by manifest key ${check.keyId}, which was not found here: set ${MANIFEST_KEY_ENV} to a copy of that key file`;
    case 'other-key':
      return `${what} is signed by manifest key ${check.keyId}, not by this machine's key: set ${MANIFEST_KEY_ENV} to the key file that signed it`;
    case 'forged':
      return `${what} does not match its MAC: it was altered in the bucket`;
  }
}

/** JSON with object keys sorted at every level: the bytes a MAC covers. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new CodecError('InvalidArgument', 'a record to sign holds a number that JSON cannot carry');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function defaultManifestKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env[MANIFEST_KEY_ENV]) return path.resolve(env[MANIFEST_KEY_ENV]);
  const config = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(config, 'offsite', 'manifest.key');
}

export interface LoadManifestKeyOptions {
  /** Default: $OFFSITE_MANIFEST_KEY_FILE, else ~/.config/offsite/manifest.key. */
  file?: string;
  /** Create the file (0600, in a 0700 directory) when it does not exist. */
  create?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * The manifest key, or undefined when there is no key file and `create` is not set. `created`
 * is true when this call made the file (tell the user to keep a copy).
 */
export async function loadManifestKey(opts: LoadManifestKeyOptions = {}): Promise<{ key: ManifestKey; created: boolean } | undefined> {
  const file = path.resolve(opts.file ?? defaultManifestKeyFile(opts.env));
  const existing = await readKeyFile(file);
  if (existing) return { key: existing, created: false };
  if (!opts.create) return undefined;
  await mkdirPrivate(path.dirname(file));
  const secret = randomBytes(32);
  try {
    const fh = await openNewPrivateFile(file);
    try {
      await fh.writeFile(
        `# Offsite manifest key (${new Date().toISOString()}). It proves which manifests in a bucket Offsite wrote.\n` +
          `# Keep a copy with your age identity: restoring from the bucket alone, without the catalog, needs it.\n` +
          `${KEY_LINE_PREFIX}${secret.toString('base64url')}\n`,
      );
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    // Another process made it first: use theirs.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const theirs = await readKeyFile(file);
      if (theirs) return { key: theirs, created: false };
    }
    throw new CodecError('InvalidIdentity', `cannot create the manifest key ${file}: ${(e as Error).message}`, { cause: e });
  }
  return { key: new ManifestKey(secret, file), created: true };
}

async function readKeyFile(file: string): Promise<ManifestKey | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CodecError('InvalidIdentity', `cannot read the manifest key ${file}: ${(e as Error).message}`, { cause: e });
  }
  const info = await stat(file);
  if (info.mode & 0o077) {
    throw new CodecError('InvalidIdentity', `the manifest key ${file} is readable by other users (mode ${(info.mode & 0o777).toString(8)}): run chmod 600 ${file}`);
  }
  const line = text.split('\n').find((l) => l.startsWith(KEY_LINE_PREFIX));
  if (!line) throw new CodecError('InvalidIdentity', `${file} is not an Offsite manifest key (no ${KEY_LINE_PREFIX} line)`);
  return new ManifestKey(Buffer.from(line.slice(KEY_LINE_PREFIX.length).trim(), 'base64url'), file);
}
