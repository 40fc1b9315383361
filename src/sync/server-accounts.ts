// Which account an account token reaches (server-tokens.ts says who holds which token). An
// account token is bound to the one account it creates: the init of a new account (a register
// with a key check, for a user id with no key check yet) binds the two, and from then on that
// token reaches that account only, and that account only that token (and the server token).
// The bindings are write-once objects in the server's storage, beside the accounts, so they
// survive restarts and are taken with the same conditional writes as everything else:
//
//   server/accounts/{userId}   {"token":"ID"}       created by the init that bound them
//   server/tokens/{ID}         {"account":"USER"}   so one token never binds a second account
//
// An account created with the server token has no binding: only the server token reaches it.
// The server holds no key and cannot tell a device from a thief of its token: the binding keeps
// other accounts' holders out, not the holder of this account's token.
import { isStorageError, objectExists, type Storage } from '../storage/index.js';
import { keyCheckKey } from './bucket-keys.js';
import { SyncError } from './errors.js';
import type { Caller } from './server-tokens.js';
import type { CallOptions } from './types.js';

/** Bindings remembered per server process (they never change once written). */
const CACHE_LIMIT = 10_000;

/** What an account token may do on a user id nobody has bound: look (it finds nothing), or init. */
const READS_OF_NOTHING: ReadonlySet<string> = new Set(['bootstrap', 'query', 'devices', 'get-deletion-requests']);

const accountKey = (userId: string) => `server/accounts/${userId}`;
const tokenKey = (tokenId: string) => `server/tokens/${tokenId}`;

export class AccountBindings {
  private readonly tokenOfAccount = new Map<string, string>();

  constructor(private readonly storage: Storage) {}

  /**
   * Lets the request through, binds a new account to the caller's token, or throws Forbidden.
   * `route` is the endpoint; `body` its parsed request (userId already checked to be an id).
   */
  async authorize(caller: Caller, route: string, body: { userId: string; keyCheck?: unknown }, opts: CallOptions): Promise<void> {
    if (caller.kind === 'server') return;
    const { userId } = body;
    const bound = await this.tokenOf(userId, opts);
    if (bound === caller.tokenId) return;
    if (bound !== undefined) {
      throw new SyncError('Forbidden', `account ${userId} is not the account of this token: an account token reaches only the account it created (ask the server's operator for your own)`);
    }
    const exists = await objectExists(this.storage, keyCheckKey(userId), opts);
    if (exists) {
      throw new SyncError('Forbidden', `account ${userId} was created with the server token and is bound to no account token: only the server token reaches it`);
    }
    if (route === 'register' && body.keyCheck !== undefined) return this.bind(userId, caller.tokenId, opts);
    if (READS_OF_NOTHING.has(route)) return; // an account that does not exist: the backend answers "nothing"
    throw new SyncError('Forbidden', `there is no account ${userId} on this server for this token: init it first`);
  }

  /** Binds `userId` and `tokenId` to each other; a retry of the same binding succeeds. */
  private async bind(userId: string, tokenId: string, opts: CallOptions): Promise<void> {
    const account = await this.claim(tokenKey(tokenId), { account: userId }, opts);
    if (account.account !== userId) {
      throw new SyncError('Forbidden', 'this token already belongs to another account: each account needs a token of its own (`offsite serve token` on the server)');
    }
    const token = await this.claim(accountKey(userId), { token: tokenId }, opts);
    if (token.token !== tokenId) throw new SyncError('Forbidden', `account ${userId} was just bound to another token`);
    this.remember(userId, tokenId);
  }

  /** Creates `key` with `value` unless it exists; returns what it holds either way. */
  private async claim<T extends Record<string, string>>(key: string, value: T, opts: CallOptions): Promise<Partial<T>> {
    try {
      await this.storage.put(key, JSON.stringify(value), { ifNoneMatch: '*', contentType: 'application/json', ...opts });
      return value;
    } catch (e) {
      if (!isStorageError(e, 'PreconditionFailed')) throw e;
    }
    return ((await this.readJson(key, opts)) ?? {}) as Partial<T>;
  }

  /** The id of the token `userId` is bound to, or undefined if it is bound to none. */
  private async tokenOf(userId: string, opts: CallOptions): Promise<string | undefined> {
    const cached = this.tokenOfAccount.get(userId);
    if (cached !== undefined) return cached;
    const record = await this.readJson(accountKey(userId), opts);
    if (record === undefined) return undefined; // not cached: an init may bind it any moment
    // A record the server did not write (changed in the storage) binds to no token anyone holds.
    const token = typeof record.token === 'string' ? record.token : '';
    this.remember(userId, token);
    return token;
  }

  private remember(userId: string, tokenId: string): void {
    if (this.tokenOfAccount.size >= CACHE_LIMIT) this.tokenOfAccount.delete(this.tokenOfAccount.keys().next().value!);
    this.tokenOfAccount.set(userId, tokenId);
  }

  private async readJson(key: string, opts: CallOptions): Promise<Record<string, unknown> | undefined> {
    let text: string;
    try {
      const { body } = await this.storage.get(key, opts);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
      text = Buffer.concat(chunks).toString('utf8');
    } catch (e) {
      if (isStorageError(e, 'NotFound')) return undefined;
      throw e;
    }
    try {
      const v = JSON.parse(text) as unknown;
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }

}
