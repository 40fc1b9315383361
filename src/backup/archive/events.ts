// What an archive run reports as it goes: the CLI turns these into progress bars, log lines or
// JSON events; the library itself prints nothing.
export type ArchiveEvent =
  | { type: 'run-start'; op: 'upload' | 'verify' | 'restore'; sessions: number; bytes: number }
  | { type: 'session-start'; sessionId: string; year: number; key: string; bytes: number; files: number }
  | { type: 'progress'; sessionId: string; done: number; total: number }
  | { type: 'session-done'; sessionId: string; key: string; size: number; sha256: string; seconds: number }
  | { type: 'session-skipped'; sessionId: string; reason: string }
  | { type: 'session-failed'; sessionId: string; error: string }
  | { type: 'notes-uploaded'; sessionId: string; key: string }
  | { type: 'cleanup'; key: string; detail: string }
  | { type: 'restore-pending'; sessionId: string; key: string; detail: string }
  /** Something the user should read: a manifest key was created, a manifest was not trusted, a session is uploaded again. */
  | { type: 'notice'; sessionId?: string; message: string }
  | { type: 'run-done'; op: 'upload' | 'verify' | 'restore'; ok: number; skipped: number; failed: number; bytes: number; seconds: number };

export type EventSink = (e: ArchiveEvent) => void;
