// Offsite's library entry point: the storage layer and the snapshot API.
export * from './storage/index.js';
export * from './snapshot/index.js';
