// Presenting archive runs. On a terminal: a bar for the current session and one for the run
// (bytes, rate, ETA). Otherwise: one plain log line per session. With --json: one JSON event per
// line (NDJSON), so scripts can follow a long run.
import type { ArchiveEvent, EventSink } from '../backup/archive/index.js';
import { formatBytes, formatDuration } from './output.js';

export function archiveReporter(mode: 'tty' | 'lines' | 'json' | 'quiet'): EventSink {
  if (mode === 'json') return (e) => process.stdout.write(`${JSON.stringify({ ...e, at: new Date().toISOString() })}\n`);
  if (mode === 'quiet') return () => undefined;
  if (mode === 'lines') return (e) => {
    const line = describe(e);
    if (line) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };
  return ttyReporter();
}

function describe(e: ArchiveEvent): string | undefined {
  switch (e.type) {
    case 'run-start':
      return `${e.op}: ${e.sessions} session(s)${e.bytes ? `, ${formatBytes(e.bytes)}` : ''}`;
    case 'session-start':
      return `${e.sessionId} (${e.year}): ${e.files} files, ${formatBytes(e.bytes)} -> ${e.key}`;
    case 'session-done':
      return `${e.sessionId}: done${e.size ? `, ${formatBytes(e.size)}` : ''}${e.seconds ? ` in ${formatDuration(e.seconds)}` : ''}`;
    case 'session-skipped':
      return `${e.sessionId}: skipped (${e.reason})`;
    case 'session-failed':
      return `${e.sessionId}: FAILED: ${e.error}`;
    case 'notes-uploaded':
      return `${e.sessionId}: notes -> ${e.key}`;
    case 'cleanup':
      return `${e.key}: ${e.detail}`;
    case 'restore-pending':
      return `${e.sessionId}: ${e.detail}`;
    case 'notice':
      return `note: ${e.message}`;
    case 'run-done':
      return `${e.op} finished: ${e.ok} ok, ${e.skipped} skipped, ${e.failed} failed${e.bytes ? `, ${formatBytes(e.bytes)}` : ''} in ${formatDuration(e.seconds)}`;
    case 'progress':
      return undefined;
  }
}

function ttyReporter(): EventSink {
  let runTotal = 0;
  let runDoneBefore = 0;
  let current: { id: string; done: number; total: number } | undefined;
  const started = Date.now();
  let sessionStarted = Date.now();
  let lastDraw = 0;
  let drawn = false;
  const bar = (frac: number) => {
    const w = 24;
    const f = Math.round(Math.min(Math.max(frac, 0), 1) * w);
    return `[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${(Math.min(frac, 1) * 100).toFixed(0).padStart(3)}%`;
  };
  const line = (label: string, done: number, total: number, since: number) => {
    const secs = Math.max((Date.now() - since) / 1000, 0.001);
    const rate = done / secs;
    const eta = rate > 0 && total > done ? (total - done) / rate : 0;
    return `${label.padEnd(16).slice(0, 16)} ${bar(total ? done / total : 0)} ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`;
  };
  const clear = () => {
    if (drawn) process.stderr.write('\x1b[1A\r\x1b[2K\x1b[1A\r\x1b[2K');
    drawn = false;
  };
  const draw = (force = false) => {
    if (!current) return;
    if (!force && Date.now() - lastDraw < 150) return;
    lastDraw = Date.now();
    clear();
    process.stderr.write(`${line(current.id, current.done, current.total, sessionStarted)}\n${line('total', runDoneBefore + current.done, runTotal, started)}\n`);
    drawn = true;
  };
  return (e) => {
    if (e.type === 'run-start') runTotal = e.bytes;
    if (e.type === 'session-start') {
      current = { id: e.sessionId, done: 0, total: e.bytes };
      sessionStarted = Date.now();
    }
    if (e.type === 'progress' && current) {
      current.done = e.done;
      current.total = e.total;
      draw();
      return;
    }
    if ((e.type === 'session-done' || e.type === 'session-failed') && current) {
      runDoneBefore += current.total;
      current = undefined;
    }
    const text = describe(e);
    if (text) {
      clear();
      process.stderr.write(`${text}\n`);
      draw(true);
    }
  };
}
