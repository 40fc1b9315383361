// Small shared pieces: the confirmation dialog (a native <dialog>: focus trapped, Escape closes),
// status messages (role=status), the status dot and the location icons (inline SVG).
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { JobStatus } from './types.js';

export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={ref} aria-labelledby="dialog-title" onClose={() => props.open && props.onCancel()}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          props.onConfirm();
        }}
      >
        <h2 id="dialog-title">{props.title}</h2>
        {props.children}
        <div class="actions">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? 'danger' : 'primary'}>
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

export interface Message {
  kind: 'ok' | 'error' | 'info';
  text: string;
}

/** Always rendered, so screen readers announce a change of its text. */
export function Status(props: { message: Message | null; testid?: string }) {
  const m = props.message;
  return (
    <p role="status" class={`status ${m ? m.kind : ''}`} data-testid={props.testid}>
      {m?.text ?? ''}
    </p>
  );
}

const statusLabel: Record<JobStatus, string> = { ok: 'last run succeeded', failed: 'last run failed', running: 'running', never: 'never run' };

export function StatusDot(props: { status: JobStatus }) {
  return <span class={`dot dot-${props.status}`} data-status={props.status} role="img" aria-label={statusLabel[props.status]} title={statusLabel[props.status]} />;
}

export function LocalIcon() {
  return (
    <svg class="icon" viewBox="0 0 24 24" width="20" height="20" role="img" aria-label="local copy">
      <title>local copy</title>
      <path fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" d="M3 13l2.5-7h13L21 13v6H3z M3 13h18" />
      <circle cx="17" cy="16" r="1.3" fill="currentColor" />
    </svg>
  );
}

export function CloudIcon() {
  return (
    <svg class="icon" viewBox="0 0 24 24" width="20" height="20" role="img" aria-label="in S3">
      <title>in S3</title>
      <path
        fill="none"
        stroke="currentColor"
        stroke-width="2"
        stroke-linejoin="round"
        d="M7 19h10.5a4 4 0 0 0 .6-7.95A6 6 0 0 0 6.5 9.5 4.75 4.75 0 0 0 7 19z"
      />
    </svg>
  );
}

export function ProgressBar(props: { value: number; label: string; text: string }) {
  const v = Math.max(0, Math.min(100, Math.round(props.value)));
  return (
    <div class="progress-wrap">
      <div class="progress" role="progressbar" aria-label={props.label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={v} aria-valuetext={props.text}>
        <div class="progress-fill" style={{ width: `${v}%` }} />
      </div>
      <span class="progress-text">{props.text}</span>
    </div>
  );
}
