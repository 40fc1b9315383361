// The console engine's public face: the HTTP shell (src/server/console) and the CLI import from here only.
export {
  Console,
  openConsole,
  defaultConsoleDataDir,
  CATALOG_FILE,
  RESTORES_DIR,
  BUCKET_LISTING_STALE_SECONDS,
  PROGRESS_EVENT_INTERVAL_MS,
  type ConsoleOptions,
  type ConsoleEvents,
  type RunView,
  type RunStatus,
  type JobView,
  type BackupView,
  type BackupsView,
  type TestConnectionView,
} from './console.js';
export { ConsoleError, isConsoleError, type ConsoleErrorCode } from './errors.js';
export { UNCONFIGURED_VIEW, settingsUrl, type SettingsInput, type SettingsView } from './settings.js';
export { openConsoleState, rekeyConsole, resetAdminToken, type ConsoleState, type RekeyResult } from './state.js';
export { CONSOLE_DB_FILE, SESSION_TTL_MS, SECRET_PLACE, ConsoleStore, SessionTable, hashToken, newAdminToken, tokenMatches, type StoredSettings } from './store.js';
export {
  CONSOLE_KEY_FILE_ENV,
  DEFAULT_KEY_FILE,
  KEY_BYTES,
  SECRET_FORMAT_VERSION,
  keyFilePath,
  keyIdOf,
  loadOrCreateKey,
  open as openSealed,
  readKeyFile,
  seal,
  sealedKeyId,
  type ConsoleKey,
  type SealedPlace,
} from './secret-box.js';
export type { ArchivesView, SyncView } from './views.js';
