// The files layer's public face: how Offsite writes the user's files (private, no symlinks
// followed, durable). Below every other layer; it imports nothing of Offsite's.
export { FilledReadable, type Filler, type TakenFiller } from './filled-readable.js';
export { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, fsyncDir, fsyncFile, mkdirPrivate, mkdtempPrivate, openNewPrivateFile, renameDurable, writePrivateFile } from './private.js';
export { writeGathered } from './write.js';
