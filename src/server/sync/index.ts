// The sync protocol's HTTP server (`offsite serve`): its public face.
export {
  createSyncServer,
  serveSync,
  DEFAULT_SYNC_HOST,
  DEFAULT_SYNC_PORT,
  type SyncServerOptions,
  type SyncServerError,
  type ServeSyncOptions,
  type RunningSyncServer,
} from './server.js';
export { DEFAULT_SYNC_BODY_LIMIT, MAX_ACCOUNT_DEVICES } from './routes.js';
