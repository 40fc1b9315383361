// Offsite's library API. Layers: storage (one interface over a local directory or S3), snapshot
// (JSON state snapshots with integrity checks). Import from "offsite".
export * from './storage/index.js';
