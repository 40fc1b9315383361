// Why a restore refused or failed; `code` picks the CLI's exit code (exit-codes.ts).
export class BackupRestoreError extends Error {
  override name = 'BackupRestoreError';
  constructor(
    readonly code:
      | 'NotFound'
      /** The backup does not match what it must hold (SHA-256, size, encryption). */
      | 'Corrupted'
      /** The object's MAC does not match its metadata: altered in the bucket. */
      | 'Forged'
      /** Nothing proves what the backup must hold (no catalog record; no MAC, or another key's). */
      | 'Unauthenticated'
      /** The object is signed by a manifest key that is not here. */
      | 'NeedsManifestKey'
      | 'TargetExists'
      | 'NeedsIdentity'
      | 'CheckFailed'
      | 'InvalidTarget',
    message: string,
  ) {
    super(message);
  }
}
