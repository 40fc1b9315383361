// The user secret as a person sees it: 32 random bytes and a 3-byte checksum in Crockford
// base32, 14 groups of 4 characters. Crockford's alphabet has no I, L, O or U, so a secret
// read aloud or copied by hand survives the usual confusions (O/0, I/l/1 are read as 0 and 1),
// and the checksum catches a mistyped or missing character before any request is made.
import { createHash, randomBytes } from 'node:crypto';
import { SyncError } from './errors.js';

export const SECRET_BYTES = 32;
const CHECKSUM_BYTES = 3;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const GROUP = 4;
/** 35 bytes = 280 bits = 56 characters of 5 bits. */
const SECRET_CHARS = ((SECRET_BYTES + CHECKSUM_BYTES) * 8) / 5;

function checksum(bytes: Uint8Array): Buffer {
  return createHash('sha256').update('offsite sync secret v1\0').update(bytes).digest().subarray(0, CHECKSUM_BYTES);
}

function encodeBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** Maps what a person may type to the canonical alphabet; undefined for anything else. */
function charValue(c: string): number | undefined {
  const upper = c.toUpperCase();
  const canonical = upper === 'O' ? '0' : upper === 'I' || upper === 'L' ? '1' : upper;
  const i = ALPHABET.indexOf(canonical);
  return i >= 0 ? i : undefined;
}

/** A new secret, formatted for display. Shown once: it cannot be recovered from anything stored. */
export function generateSecret(): string {
  return formatSecret(randomBytes(SECRET_BYTES));
}

export function formatSecret(secret: Uint8Array): string {
  if (secret.length !== SECRET_BYTES) throw new RangeError(`a sync secret is ${SECRET_BYTES} bytes`);
  const text = encodeBase32(Buffer.concat([secret, checksum(secret)]));
  const groups: string[] = [];
  for (let i = 0; i < text.length; i += GROUP) groups.push(text.slice(i, i + GROUP));
  return groups.join('-');
}

/**
 * The 32 secret bytes from what a user typed (dashes, spaces and case do not matter). Throws
 * InvalidSecret naming the problem; the message never repeats the secret.
 */
export function parseSecret(text: string): Buffer {
  const compact = text.replace(/[\s-]/g, '');
  const values: number[] = [];
  for (const [i, c] of [...compact].entries()) {
    const v = charValue(c);
    if (v === undefined) throw new SyncError('InvalidSecret', `the secret has a character that cannot be in a secret at position ${i + 1} ("U" and punctuation never appear); check it against the copy you saved`);
    values.push(v);
  }
  if (values.length !== SECRET_CHARS) {
    throw new SyncError('InvalidSecret', `a secret has ${SECRET_CHARS} characters (${SECRET_CHARS / GROUP} groups of ${GROUP}), this one has ${values.length}; check it against the copy you saved`);
  }
  const bytes = Buffer.alloc(SECRET_BYTES + CHECKSUM_BYTES);
  let buffer = 0;
  let bits = 0;
  let at = 0;
  for (const v of values) {
    buffer = (buffer << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bytes[at++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
      buffer &= (1 << bits) - 1;
    }
  }
  const secret = bytes.subarray(0, SECRET_BYTES);
  if (!checksum(secret).equals(bytes.subarray(SECRET_BYTES))) {
    throw new SyncError('InvalidSecret', 'the secret does not match its checksum: a character is mistyped or two are swapped; check it against the copy you saved');
  }
  return Buffer.from(secret);
}
