/**
 * Opening the console's state with its key, and the two maintenance commands (rekey, token
 * reset). Start-up refuses, naming the key file (never the key), when encrypted settings exist
 * and the key is missing, is another key, or fails to open them: a console that silently
 * treated them as absent would upload nothing and say nothing.
 */
import { rm, stat } from 'node:fs/promises';
import { mkdirPrivate } from '../files/index.js';
import { ConsoleError, isConsoleError } from './errors.js';
import {
  CONSOLE_KEY_FILE_ENV,
  commitPendingKey,
  keyFilePath,
  loadOrCreateKey,
  pendingKeyFile,
  randomKey,
  readKeyFile,
  writePendingKey,
  type ConsoleKey,
} from './secret-box.js';
import { ConsoleStore, newAdminToken } from './store.js';

export interface ConsoleState {
  store: ConsoleStore;
  key: ConsoleKey;
  keyCreated: boolean;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * A rekey writes the new key to KEYFILE.new, commits the database, then renames: a crash in
 * between leaves a database under the pending key, which is finished here.
 */
async function finishInterruptedRekey(store: ConsoleStore, file: string): Promise<ConsoleKey | undefined> {
  const pending = pendingKeyFile(file);
  if (!(await exists(pending))) return undefined;
  const key = await readKeyFile(pending).catch(() => undefined);
  if (!key) return undefined;
  try {
    store.checkKey(key);
  } catch {
    return undefined;
  }
  if (store.sealedValues().length === 0) return undefined;
  await commitPendingKey(file);
  return { ...key, file };
}

export async function openConsoleState(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<ConsoleState> {
  await mkdirPrivate(dataDir);
  const store = ConsoleStore.open(dataDir);
  try {
    const { file, explicit } = keyFilePath(dataDir, env);
    const encrypted = store.sealedValues().length > 0;
    const whereFrom = explicit ? ` (from $${CONSOLE_KEY_FILE_ENV})` : '';
    if (!(await exists(file))) {
      const resumed = await finishInterruptedRekey(store, file);
      if (resumed) return { store, key: resumed, keyCreated: false };
      if (encrypted) {
        throw new ConsoleError(
          'KeyMissing',
          `the S3 settings in ${store.file} are encrypted, and their key file ${file}${whereFrom} is missing: put the key file back (from your backup of it), or delete the settings' database to start over`,
        );
      }
    }
    const { key, created } = await loadOrCreateKey(dataDir, env);
    try {
      store.checkKey(key);
    } catch (e) {
      if (!isConsoleError(e)) throw e;
      const resumed = await finishInterruptedRekey(store, file);
      if (resumed) return { store, key: resumed, keyCreated: false };
      if (e.code === 'WrongKey') {
        throw new ConsoleError('WrongKey', `the S3 settings in ${store.file} were encrypted under key ${store.sealedKeyIds().join(', ')}, and the key file ${file}${whereFrom} holds key ${key.keyId}: start with the key file they were saved with`);
      }
      throw new ConsoleError('Tampered', `the S3 settings in ${store.file} do not decrypt with the key file ${file}${whereFrom}: the database was altered or the key is not the one they were saved with`);
    }
    await rm(pendingKeyFile(file), { force: true });
    return { store, key, keyCreated: created };
  } catch (e) {
    store.close();
    throw e;
  }
}

export interface RekeyResult {
  keyFile: string;
  oldKeyId: string;
  newKeyId: string;
  values: number;
}

/**
 * Re-encrypts the settings under a new key (random, or read from `newKeyFile`), then replaces
 * the key file atomically. Run it while the console is stopped.
 */
export async function rekeyConsole(opts: { dataDir: string; env?: NodeJS.ProcessEnv; newKeyFile?: string }): Promise<RekeyResult> {
  const env = opts.env ?? process.env;
  const state = await openConsoleState(opts.dataDir, env);
  try {
    const file = state.key.file;
    const next = opts.newKeyFile ? { ...(await readKeyFile(opts.newKeyFile)), file } : randomKey(file);
    if (next.keyId === state.key.keyId) throw new ConsoleError('BadRequest', `the new key is the key in use (${next.keyId})`);
    // The new key is durable before the database switches to it; see finishInterruptedRekey.
    await writePendingKey(file, next);
    const values = state.store.rekey(state.key, next);
    await commitPendingKey(file);
    return { keyFile: file, oldKeyId: state.key.keyId, newKeyId: next.keyId, values };
  } finally {
    state.store.close();
  }
}

/** A new admin token; the old one stops working at once (a running console reads the hash each time). */
export async function resetAdminToken(opts: { dataDir: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  const state = await openConsoleState(opts.dataDir, opts.env ?? process.env);
  try {
    const { token, hash } = newAdminToken();
    state.store.setAdminTokenHash(hash);
    return token;
  } finally {
    state.store.close();
  }
}


