import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import type { Duplex } from 'node:stream';
import { ScryptPassphraseIdentity, ScryptPassphraseRecipient } from './age-scrypt.js';
import { CodecError, isCodecError, messageOf } from './errors.js';
import { WebTransformDuplex } from './web-duplex.js';

// The age format (https://age-encryption.org/v1), binary, through typage, so a user restores
// with the `age` CLI alone (`age -d -i key.txt`). typage streams: the payload is sealed in
// 64 KiB ChaCha20-Poly1305 chunks, so memory stays at a chunk or two whatever the size. Its
// cipher is pure JavaScript (noble): about 50 MiB/s on one core, slower than most disks but
// faster than most uplinks.
//
// Passphrases cost more than recipients: age's scrypt (2^18) needs 256 MiB and about a second,
// once per stream (to encrypt and to decrypt). It runs through node:crypto in the thread pool,
// one at a time (age-scrypt.ts), never on the event loop. Recipients (X25519) cost
// milliseconds: prefer them for scheduled runs.

export interface EncryptOptions {
  /** age recipients ("age1..."), public: they may appear in messages. */
  recipients?: string[];
  /** Instead of recipients. */
  passphrase?: string;
  /** log2 of scrypt's cost for passphrases; age's default is 18 (about a second). Lower only for tests. */
  scryptWorkFactor?: number;
}

export interface DecryptOptions {
  /** age identities ("AGE-SECRET-KEY-1..."), or whole identity files (comments and blank lines skipped). */
  identities?: string[];
  passphrase?: string;
}

/** A duplex: plaintext in, a binary age file out. Throws InvalidRecipient at once for a malformed recipient. */
export function encryptStream(opts: EncryptOptions): Duplex {
  const recipients = opts.recipients ?? [];
  if ((recipients.length > 0) === (opts.passphrase !== undefined)) {
    throw new CodecError('InvalidArgument', 'encryptStream needs either recipients or a passphrase (not both)');
  }
  const e = new Encrypter();
  if (opts.passphrase !== undefined) {
    if (opts.passphrase === '') throw new CodecError('InvalidArgument', 'the passphrase is empty');
    try {
      e.addRecipient(new ScryptPassphraseRecipient(opts.passphrase, opts.scryptWorkFactor));
    } catch (cause) {
      throw new CodecError('InvalidArgument', messageOf(cause), { cause });
    }
  }
  for (const r of recipients) {
    try {
      e.addRecipient(r.trim());
    } catch (cause) {
      throw new CodecError('InvalidRecipient', `"${r}" is not an age recipient (expected age1... as printed by age-keygen -y): ${messageOf(cause)}`, { cause });
    }
  }
  return new WebTransformDuplex((input) => e.encrypt(input), (err) => (err instanceof Error ? err : new Error(String(err))));
}

/** A duplex: an age file in, plaintext out. Wrong key or damaged data → DecryptionFailed. */
export function decryptStream(opts: DecryptOptions): Duplex {
  const d = new Decrypter();
  const lines = (opts.identities ?? []).flatMap((s) => s.split(/\r?\n/)).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  lines.forEach((line, i) => {
    try {
      d.addIdentity(line);
    } catch (cause) {
      // Never echo the line: it may be a secret key with a typo.
      throw new CodecError('InvalidIdentity', `identity ${i + 1} is not an age identity (expected AGE-SECRET-KEY-1..., as written by age-keygen)`, { cause });
    }
  });
  if (opts.passphrase !== undefined) d.addIdentity(new ScryptPassphraseIdentity(opts.passphrase));
  if (lines.length === 0 && opts.passphrase === undefined) {
    throw new CodecError('InvalidArgument', 'decryptStream needs identities or a passphrase');
  }
  return new WebTransformDuplex((input) => d.decrypt(input), decryptionFailed);
}

function decryptionFailed(e: unknown): Error {
  if (isCodecError(e) || (e instanceof Error && e.name === 'AbortError')) return e;
  const msg = messageOf(e);
  const why = /no identity matched/.test(msg)
    ? 'none of the given identities or passphrases opens it (it was encrypted to other recipients, or with another passphrase)'
    : /HMAC/.test(msg)
      ? 'its header does not verify (wrong passphrase, or a damaged header)'
      : /tag|final chunk|ciphertext/i.test(msg)
        ? 'its content does not authenticate (the file is damaged or truncated)'
        : 'it is not a valid age file, or it is truncated';
  return new CodecError('DecryptionFailed', `cannot decrypt: ${why} [${msg}]`, { cause: e });
}

/**
 * A new identity and its recipient. Explicitly X25519, not the post-quantum hybrid keys typage
 * also makes: age 1.1 (Debian's) predates those and could not read the files.
 */
export async function generateAgeIdentity(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}
