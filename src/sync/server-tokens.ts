// The bearer tokens of `offsite serve`. Two kinds:
// - the server token: the token file (or $OFFSITE_SERVE_TOKEN). It reaches every account, so one
//   person who copies it to their devices needs nothing else (the single-user default);
// - account tokens, minted from the server token by `offsite serve token`:
//       acct.{id}.{mac}      id: 12 random bytes, mac: HMAC-SHA256(K, id), both base64url
//   K is derived from the server token by HKDF, so the server checks an account token with no
//   state and no storage request, and a token it never minted costs it nothing. Which account
//   an account token reaches is decided by server-accounts.ts (the account it created).
// Rotating the server token (a new token file) revokes every account token at once; `offsite
// serve token --id ID` re-issues the ones to keep, and an account stays bound to its token's id.
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { mkdirPrivate, openNewPrivateFile, fsyncDir } from '../files/index.js';
import { SyncError } from './errors.js';

/** A shorter token is refused: it could be guessed. The generated one is 43 characters. */
export const MIN_TOKEN_LENGTH = 16;
const ACCOUNT_TOKEN_PATTERN = /^acct\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;
const TOKEN_ID_PATTERN = /^[A-Za-z0-9_-]{16}$/;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** Who sent a request: the server token's holder, or the holder of one account token. */
export type Caller = { kind: 'server' } | { kind: 'account'; tokenId: string };

export function checkServerToken(token: string): void {
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || !VISIBLE_ASCII.test(token)) {
    throw new SyncError('Unauthorized', `a sync server token is at least ${MIN_TOKEN_LENGTH} visible ASCII characters, no spaces (a generated token file has 43)`);
  }
  // Account tokens are told apart by their form: a server token of that form would be read as one.
  if (token.startsWith('acct.')) throw new SyncError('Unauthorized', 'a sync server token may not start with "acct." (that is the form of account tokens)');
}

function accountTokenKey(serverToken: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(serverToken, 'utf8'), 'offsite serve', 'account tokens v1', 32));
}

function accountTokenMac(key: Buffer, id: string): Buffer {
  return createHmac('sha256', key).update(`offsite account token\0${id}`, 'utf8').digest();
}

/**
 * A new account token of the server whose token is `serverToken`; with `id`, the token of that
 * id again (after the server token was rotated: its account stays bound to the id).
 */
export function createAccountToken(serverToken: string, opts: { id?: string } = {}): { token: string; id: string } {
  checkServerToken(serverToken);
  const id = opts.id ?? randomBytes(12).toString('base64url');
  if (!TOKEN_ID_PATTERN.test(id)) throw new SyncError('InvalidEntry', 'an account token id is 16 characters of [A-Za-z0-9_-] (as `offsite serve token` printed it)');
  return { token: `acct.${id}.${accountTokenMac(accountTokenKey(serverToken), id).toString('base64url')}`, id };
}

/** Tells the callers of one server apart by their bearer token, in constant time per token kind. */
export class TokenDoor {
  readonly #serverDigest: Buffer;
  readonly #accountKey: Buffer;

  constructor(serverToken: string) {
    checkServerToken(serverToken);
    this.#serverDigest = digest(serverToken);
    this.#accountKey = accountTokenKey(serverToken);
  }

  /** The caller an Authorization header names, or undefined for none, a wrong one, or a token of another server. */
  identify(header: string | undefined): Caller | undefined {
    const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
    if (!m) return undefined;
    const token = m[1]!;
    const account = ACCOUNT_TOKEN_PATTERN.exec(token);
    if (account) {
      const mac = Buffer.from(account[2]!, 'base64url');
      const expected = accountTokenMac(this.#accountKey, account[1]!);
      return mac.length === expected.length && timingSafeEqual(mac, expected) ? { kind: 'account', tokenId: account[1]! } : undefined;
    }
    // Digests of equal length: the comparison's time tells nothing about the token.
    return timingSafeEqual(digest(token), this.#serverDigest) ? { kind: 'server' } : undefined;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** $XDG_CONFIG_HOME/offsite/serve-token, else ~/.config/offsite/serve-token. */
export function defaultServeTokenFile(): string {
  const config = process.env.XDG_CONFIG_HOME || path.join(homedir(), '.config');
  return path.join(config, 'offsite', 'serve-token');
}

export interface ServeToken {
  token: string;
  /** The file it came from (undefined when given directly). */
  file?: string;
  /** The file did not exist and was created with a new random token. */
  created: boolean;
}

/**
 * The server's token: `token` when given (from OFFSITE_SERVE_TOKEN), else the content of `file`.
 * A missing file is created (0700 directories, the file 0600, whatever the umask) with 32 random
 * bytes, base64url, unless `create` is false (minting account tokens needs the server's own).
 * A file readable by group or others is refused: anyone who can read it can use the server.
 */
export async function resolveServeToken(opts: { token?: string; file: string; create?: boolean }): Promise<ServeToken> {
  if (opts.token !== undefined && opts.token !== '') {
    checkServerToken(opts.token);
    return { token: opts.token, created: false };
  }
  const file = path.resolve(opts.file);
  let created = false;
  if (opts.create !== false) {
    try {
      await mkdirPrivate(path.dirname(file));
      const fh = await openNewPrivateFile(file);
      try {
        await fh.writeFile(`${randomBytes(32).toString('base64url')}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsyncDir(path.dirname(file));
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SyncError('Unauthorized', `cannot create the token file ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  let info;
  try {
    info = await stat(file);
  } catch (e) {
    throw new SyncError('Unauthorized', `no token file ${file}: give the server's --token-file (or $OFFSITE_SERVE_TOKEN); \`offsite serve\` creates it on its first start`, { cause: e });
  }
  if ((info.mode & 0o077) !== 0) {
    throw new SyncError('Unauthorized', `the token file ${file} is readable by other users (mode ${(info.mode & 0o777).toString(8)}): run chmod 600 ${file}`);
  }
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < MIN_TOKEN_LENGTH || !VISIBLE_ASCII.test(token) || token.startsWith('acct.')) {
    throw new SyncError('Unauthorized', `the token file ${file} must hold one token of at least ${MIN_TOKEN_LENGTH} characters (delete it to have a new one generated)`);
  }
  return { token, file, created };
}
