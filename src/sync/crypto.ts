// Keys and sealed envelopes. Everything sync stores (batches, snapshots, device records,
// cursors, the key check) is one envelope:
//
//   "OSY" 0x01 | header length (uint16 BE) | header | nonce (12) | AES-256-GCM ciphertext | tag (16)
//
// The header is ASCII "<kind> <deviceId> <seq> <time>": where the object belongs. It is in the
// clear (so a reader can say where a misplaced batch came from) and authenticated: the
// associated data is the user id plus every byte before the nonce. A reader passes the
// position it expects (from the key it read, and its cursor); an object sealed for any other
// position, user or key, or with any byte changed, is refused. The plaintext is gzipped JSON,
// followed by zero bytes that pad the envelope to a size bucket (paddedEnvelopeSize): gunzip
// stops at the end of the gzip member and ignores trailing zeros, so readers of any version open
// padded envelopes unchanged.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { SyncError } from './errors.js';

const MAGIC = Buffer.from('OSY', 'ascii');
export const ENVELOPE_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_SALT = 'offsite sync v1';

export interface SyncKeys {
  /**
   * Binds every envelope to the account (it is in the associated data). HKDF "user id": the value
   * Offsite used as the storage id of every backend before ids were derived per backend, so it
   * is still the storage id of accounts created then (`legacyUserId`), and their envelopes open
   * unchanged. New accounts never send it anywhere.
   */
  accountId: string;
  /** AES-256-GCM key for every envelope. */
  sealKey: Buffer;
  /** HMAC key for the storage id of the account on one backend (userIdFor). */
  idKey: Buffer;
}

/** HKDF-SHA256 of the 32 secret bytes into the account id, the sealing key and the id key. */
export function deriveKeys(secret: Uint8Array): SyncKeys {
  const derive = (info: string, length: number) => Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, info, length));
  return { accountId: derive('user id', 16).toString('hex'), sealKey: derive('seal key aes-256-gcm', 32), idKey: derive('user id per backend', 32) };
}

/**
 * The account's id on one backend (its key prefix, the userId of every request): HMAC of the
 * backend's name (config.ts backendName), so two backends of one account show unrelated ids, and
 * neither reveals the secret or the other. 16 bytes, hex.
 */
export function userIdFor(keys: SyncKeys, backendName: string): string {
  return createHmac('sha256', keys.idKey).update(`offsite sync user id\0${backendName}`).digest().subarray(0, 16).toString('hex');
}

/** The storage id of accounts created before ids were per backend: the same on every backend. */
export function legacyUserId(keys: SyncKeys): string {
  return keys.accountId;
}

/**
 * Every envelope of at most this many bytes is padded to exactly this size: the sizes of small
 * batches (one or a few shell commands), cursors, device records and the key check then say
 * nothing about their content. It is also the largest batch carried in its key (bucket-keys.ts),
 * so padding never turns an inline batch into a body.
 */
export const SMALL_ENVELOPE_BYTES = 480;

/**
 * The size an envelope of `n` bytes is padded to: SMALL_ENVELOPE_BYTES for a small one; above
 * it, Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication
 * with PURBs", 2019): the low bits of the size are rounded up so that only O(log log n) bits of
 * it remain: at most 12% more bytes in general, at most 6.2% (about 2% on average) from 481
 * bytes up.
 */
export function paddedEnvelopeSize(n: number): number {
  if (n <= SMALL_ENVELOPE_BYTES) return SMALL_ENVELOPE_BYTES;
  const e = Math.floor(Math.log2(n));
  const s = Math.floor(Math.log2(e)) + 1;
  const mask = 2 ** (e - s) - 1;
  return Math.ceil(n / (mask + 1)) * (mask + 1);
}

export type SealedKind = 'entries' | 'deletions' | 'snapshot' | 'device' | 'cursor' | 'key-check';
const KINDS: ReadonlySet<string> = new Set<SealedKind>(['entries', 'deletions', 'snapshot', 'device', 'cursor', 'key-check']);

/** Where a sealed object belongs. For batches: (device, seq, time) of its log position. */
export interface SealContext {
  kind: SealedKind;
  deviceId: string;
  seq: number;
  time: number;
}

/** What a reader expects; fields left out are not checked (a snapshot's key names only its generation). */
export type ExpectedContext = Pick<SealContext, 'kind'> & Partial<SealContext>;

/** An authentic object found at a position it was not sealed for: swapped, moved or replayed. */
export class MisplacedError extends SyncError {
  readonly sealedFor: SealContext;

  constructor(sealedFor: SealContext, expected: ExpectedContext, key: string | undefined) {
    super('OutOfOrder', `${key ?? 'a stored object'} holds an authentic ${sealedFor.kind} object sealed for device ${sealedFor.deviceId} seq ${sealedFor.seq}, not for ${describe(expected)}: it was moved, swapped or replayed; it is not imported`, key === undefined ? {} : { key });
    this.sealedFor = sealedFor;
  }
}

function describe(c: ExpectedContext): string {
  return [c.deviceId !== undefined ? `device ${c.deviceId}` : '', c.seq !== undefined ? `seq ${c.seq}` : '', c.time !== undefined ? `time ${c.time}` : ''].filter(Boolean).join(' ') || c.kind;
}

function headerText(c: SealContext): string {
  if (!KINDS.has(c.kind)) throw new RangeError(`unknown sealed kind ${c.kind}`);
  if (!/^[0-9a-z-]{1,64}$/.test(c.deviceId)) throw new RangeError('a device id is 1-64 characters of [0-9a-z-]');
  if (!Number.isSafeInteger(c.seq) || c.seq < 0 || !Number.isSafeInteger(c.time) || c.time < 0) throw new RangeError('seq and time are non-negative integers');
  return `${c.kind} ${c.deviceId} ${c.seq} ${c.time}`;
}

function parseHeader(text: string): SealContext | undefined {
  const m = /^([a-z-]+) ([0-9a-z-]{1,64}) (\d{1,16}) (\d{1,16})$/.exec(text);
  if (!m || !KINDS.has(m[1]!)) return undefined;
  return { kind: m[1] as SealedKind, deviceId: m[2]!, seq: Number(m[3]), time: Number(m[4]) };
}

function associatedData(accountId: string, prefix: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`offsite-sync\0${accountId}\0`, 'ascii'), prefix]);
}

/** Seals `payload` (any JSON value) for `context` with a fresh random nonce. */
export function seal(keys: SyncKeys, context: SealContext, payload: unknown): Buffer {
  return sealJson(keys, context, JSON.stringify(payload));
}

/** seal() for a payload already serialised as JSON text (large snapshots built as strings). */
export function sealJson(keys: SyncKeys, context: SealContext, json: string): Buffer {
  const header = Buffer.from(headerText(context), 'ascii');
  const prefix = Buffer.alloc(MAGIC.length + 3 + header.length);
  MAGIC.copy(prefix, 0);
  prefix[MAGIC.length] = ENVELOPE_VERSION;
  prefix.writeUInt16BE(header.length, MAGIC.length + 1);
  header.copy(prefix, MAGIC.length + 3);
  // A random 96-bit nonce per envelope: safe for far more than the 2^32 envelopes one key may seal.
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keys.sealKey, nonce);
  cipher.setAAD(associatedData(keys.accountId, prefix));
  const compressed = gzipSync(json);
  const unpadded = prefix.length + NONCE_BYTES + compressed.length + TAG_BYTES;
  const padding = Buffer.alloc(paddedEnvelopeSize(unpadded) - unpadded);
  const body = Buffer.concat([cipher.update(compressed), cipher.update(padding), cipher.final()]);
  return Buffer.concat([prefix, nonce, body, cipher.getAuthTag()]);
}

/** The header of an envelope as stored, unauthenticated: for diagnostics only. */
export function peekContext(data: Uint8Array): SealContext | undefined {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < MAGIC.length + 3 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const length = buf.readUInt16BE(MAGIC.length + 1);
  return parseHeader(buf.subarray(MAGIC.length + 3, MAGIC.length + 3 + length).toString('latin1'));
}

/**
 * What a payload's JSON text is, whatever envelope carries it: SHA-256 of its UTF-8 bytes. Two
 * envelopes of one batch (a retried or republished send, a migrated copy) have different bytes
 * (nonce, time, padding) but the same payload digest.
 */
export function payloadDigest(json: string | Uint8Array): Buffer {
  return createHash('sha256').update(json).digest();
}

/**
 * Authenticates and opens an envelope. Throws Tampered if any byte was changed, truncated or
 * forged (or the key is not the one it was sealed with), MisplacedError (code OutOfOrder) if
 * it is authentic but was sealed for another position than `expected`, UnsupportedSyncFormat
 * for a newer envelope version. `key` names the object in messages. `digest`: payloadDigest of
 * the JSON text.
 */
export function open(keys: SyncKeys, expected: ExpectedContext, data: Uint8Array, key?: string): { payload: unknown; context: SealContext; digest: Buffer } {
  const where = key ?? 'a stored object';
  const tampered = (why: string, cause?: unknown) =>
    new SyncError('Tampered', `${where} failed authentication (${why}): it was changed or forged after it was written, or belongs to another account; it is not imported`, { ...(key === undefined ? {} : { key }), cause });
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const headerAt = MAGIC.length + 3;
  if (buf.length < headerAt || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw tampered('not an Offsite sync envelope');
  if (buf[MAGIC.length]! > ENVELOPE_VERSION) {
    throw new SyncError('UnsupportedSyncFormat', `${where} was written by a newer Offsite (envelope version ${buf[MAGIC.length]}); upgrade Offsite on this device`, key === undefined ? {} : { key });
  }
  if (buf[MAGIC.length] !== ENVELOPE_VERSION) throw tampered('unknown envelope version');
  const headerLength = buf.readUInt16BE(MAGIC.length + 1);
  const nonceAt = headerAt + headerLength;
  if (buf.length < nonceAt + NONCE_BYTES + TAG_BYTES) throw tampered('truncated');
  const context = parseHeader(buf.subarray(headerAt, nonceAt).toString('latin1'));
  if (!context) throw tampered('damaged header');
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.sealKey, buf.subarray(nonceAt, nonceAt + NONCE_BYTES));
    decipher.setAAD(associatedData(keys.accountId, buf.subarray(0, nonceAt)));
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    plaintext = Buffer.concat([decipher.update(buf.subarray(nonceAt + NONCE_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
  } catch (e) {
    throw tampered('bad authentication tag', e);
  }
  for (const field of ['kind', 'deviceId', 'seq', 'time'] as const) {
    if (expected[field] !== undefined && expected[field] !== context[field]) throw new MisplacedError(context, expected, key);
  }
  try {
    const json = gunzipSync(plaintext);
    return { payload: JSON.parse(json.toString('utf8')) as unknown, context, digest: payloadDigest(json) };
  } catch (e) {
    // Authentic but unreadable: written by a broken client with the right key.
    throw tampered('authentic but not gzipped JSON', e);
  }
}
