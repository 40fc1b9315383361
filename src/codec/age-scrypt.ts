// age's passphrase recipient (the "scrypt" stanza of https://age-encryption.org/v1) with the key
// derived by node:crypto instead of typage's pure-JavaScript scrypt. The format is the same (the
// `age` CLI reads and writes these files), but the derivation runs in libuv's thread pool: the
// event loop goes on while it works (typage's took ~2 s of synchronous work at age's default
// cost 2^18), and it runs natively. One derivation at a time per process: each holds
// 128 x r x N bytes (256 MiB at 2^18) outside the JavaScript heap, so memory stays bounded however
// many streams are opened at once.
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { Stanza, type Identity, type Recipient } from 'age-encryption';

const LABEL = 'age-encryption.org/v1/scrypt';
const SALT_BYTES = 16;
/** age's own default work factor (about a second natively). */
export const DEFAULT_SCRYPT_LOG_N = 18;
/** The highest work factor a file may ask for (as age and typage: beyond it a header is a denial of service). */
export const MAX_SCRYPT_LOG_N = 20;
const R = 8;

let queue: Promise<unknown> = Promise.resolve();

/** One scrypt at a time: the next waits for the previous one's memory to be freed. */
function deriveKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Buffer> {
  const labelAndSalt = Buffer.concat([Buffer.from(LABEL), salt]);
  const N = 2 ** logN;
  const run = () =>
    new Promise<Buffer>((resolve, reject) =>
      // The passphrase as UTF-8, as typage and age take it. maxmem: scrypt needs 128 x r x N
      // bytes; Node refuses anything above 32 MiB by default.
      scrypt(passphrase, labelAndSalt, 32, { N, r: R, p: 1, maxmem: 128 * R * N + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
    );
  const next = queue.then(run, run);
  queue = next.catch(() => undefined);
  return next;
}

/** ChaCha20-Poly1305 with a zero nonce, as age wraps the file key (the key is used once). */
function wrap(fileKey: Uint8Array, key: Buffer): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  return Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
}

function unwrap(body: Uint8Array, key: Buffer): Uint8Array | null {
  if (body.length !== 32) throw new Error('invalid scrypt stanza');
  const d = createDecipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  d.setAuthTag(body.subarray(16));
  try {
    return Buffer.concat([d.update(body.subarray(0, 16)), d.final()]);
  } catch {
    return null; // another passphrase
  }
}

export class ScryptPassphraseRecipient implements Recipient {
  constructor(
    private readonly passphrase: string,
    private readonly logN: number = DEFAULT_SCRYPT_LOG_N,
  ) {
    if (!Number.isInteger(logN) || logN < 1 || logN > MAX_SCRYPT_LOG_N) throw new RangeError(`scrypt work factor must be 1..${MAX_SCRYPT_LOG_N}, not ${logN}`);
  }

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = randomBytes(SALT_BYTES);
    const key = await deriveKey(this.passphrase, salt, this.logN);
    return [new Stanza(['scrypt', salt.toString('base64').replace(/=+$/, ''), String(this.logN)], wrap(fileKey, key))];
  }
}

export class ScryptPassphraseIdentity implements Identity {
  constructor(private readonly passphrase: string) {}

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    for (const s of stanzas) {
      if (s.args[0] !== 'scrypt') continue;
      // The spec: a passphrase file has exactly one stanza (else a recipient could be added unseen).
      if (stanzas.length !== 1) throw new Error('scrypt recipient is not the only one in the header');
      const [, saltText, logNText] = s.args;
      if (s.args.length !== 3 || !saltText || !logNText || !/^[1-9][0-9]*$/.test(logNText) || !/^[A-Za-z0-9+/]+$/.test(saltText)) throw new Error('invalid scrypt stanza');
      const salt = Buffer.from(saltText, 'base64');
      if (salt.length !== SALT_BYTES || salt.toString('base64').replace(/=+$/, '') !== saltText) throw new Error('invalid scrypt stanza');
      const logN = Number(logNText);
      if (logN > MAX_SCRYPT_LOG_N) throw new Error('scrypt work factor is too high');
      return unwrap(s.body, await deriveKey(this.passphrase, salt, logN));
    }
    return null;
  }
}
