// Keys and sealed envelopes. Everything sync stores (batches, snapshots, device records,
// cursors, the key check) is one envelope:
//
//   "OSY" 0x01 | header length (uint16 BE) | header | nonce (12) | AES-256-GCM ciphertext | tag (16)
//
// The header is ASCII "<kind> <deviceId> <seq> <time>": where the object belongs. It is in the
// clear (so a reader can say where a misplaced batch came from) and authenticated: the
// associated data is the user id plus every byte before the nonce. A reader passes the
// position it expects (from the key it read, and its cursor); an object sealed for any other
// position, user or key, or with any byte changed, is refused. The plaintext is gzipped JSON.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { SyncError } from './errors.js';

const MAGIC = Buffer.from('OSY', 'ascii');
export const ENVELOPE_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_SALT = 'offsite sync v1';

export interface SyncKeys {
  /** Names the account in keys and requests; HKDF output, so it does not reveal the secret. */
  userId: string;
  /** AES-256-GCM key for every envelope. */
  sealKey: Buffer;
}

/** HKDF-SHA256 of the 32 secret bytes into the user id and the sealing key. */
export function deriveKeys(secret: Uint8Array): SyncKeys {
  const derive = (info: string, length: number) => Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, info, length));
  return { userId: derive('user id', 16).toString('hex'), sealKey: derive('seal key aes-256-gcm', 32) };
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

function associatedData(userId: string, prefix: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`offsite-sync\0${userId}\0`, 'ascii'), prefix]);
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
  cipher.setAAD(associatedData(keys.userId, prefix));
  const body = Buffer.concat([cipher.update(gzipSync(json)), cipher.final()]);
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
 * Authenticates and opens an envelope. Throws Tampered if any byte was changed, truncated or
 * forged (or the key is not the one it was sealed with), MisplacedError (code OutOfOrder) if
 * it is authentic but was sealed for another position than `expected`, UnsupportedSyncFormat
 * for a newer envelope version. `key` names the object in messages.
 */
export function open(keys: SyncKeys, expected: ExpectedContext, data: Uint8Array, key?: string): { payload: unknown; context: SealContext } {
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
    decipher.setAAD(associatedData(keys.userId, buf.subarray(0, nonceAt)));
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    plaintext = Buffer.concat([decipher.update(buf.subarray(nonceAt + NONCE_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
  } catch (e) {
    throw tampered('bad authentication tag', e);
  }
  for (const field of ['kind', 'deviceId', 'seq', 'time'] as const) {
    if (expected[field] !== undefined && expected[field] !== context[field]) throw new MisplacedError(context, expected, key);
  }
  try {
    return { payload: JSON.parse(gunzipSync(plaintext).toString('utf8')) as unknown, context };
  } catch (e) {
    // Authentic but unreadable: written by a broken client with the right key.
    throw tampered('authentic but not gzipped JSON', e);
  }
}
