// Sync: the devices of the sync account and what is waiting to be sent or compacted, read-only.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { Status, type Message } from './components.js';
import { formatDate } from './format.js';
import type { SyncStatus } from './types.js';

export function Sync() {
  const [data, setData] = useState<SyncStatus | null>(null);
  const [message, setMessage] = useState<Message | null>(null);
  useEffect(() => {
    api.sync().then(setData, (e: Error) => setMessage({ kind: 'error', text: `Could not load the sync status: ${e.message}` }));
  }, []);
  return (
    <main>
      <h1>Sync</h1>
      <Status message={message} />
      {data && !data.configured && (
        <p class="card">
          Sync is not set up here. Start the console with <code>--sync-config FILE</code> (written by <code>offsite sync init</code> or <code>join</code>) to see its devices.
        </p>
      )}
      {data?.configured && (
        <>
          <section>
            <h2>Devices</h2>
            <table class="table responsive">
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">Host</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {data.devices.map((d) => (
                  <tr key={d.device_id}>
                    <th scope="row" data-label="Device">
                      {d.name ?? d.device_id} {d.self && <span class="badge ok">this device</span>}
                      <div class="sub mono">{d.device_id}</div>
                    </th>
                    <td data-label="Host">{d.host ?? '—'}</td>
                    <td data-label="Last seen">{formatDate(d.last_seen_at)}</td>
                    <td data-label="State">{d.stale ? <span class="badge warn">stale</span> : <span class="badge ok">active</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          {(
            <section class="card">
              <h2>Pending</h2>
              <dl class="facts">
                <dt>Entries waiting to be sent</dt>
                <dd>{data.pending.entries}</dd>
                <dt>Deletions waiting to be sent</dt>
                <dd>{data.pending.deletions}</dd>
                <dt>Unsent batches</dt>
                <dd>{data.pending.unsent_batches}</dd>
                <dt>Snapshot generation</dt>
                <dd>{data.snapshot_generation}</dd>
              </dl>
            </section>
          )}
          {data.problems.length > 0 && (
            <section class="card">
              <h2>Problems</h2>
              <ul>
                {data.problems.map((p, i) => (
                  <li key={i}>
                    <span class="mono">{p.device_id}</span>: {p.message} <span class="sub">({p.code})</span>
                  </li>
                ))}
              </ul>
            </section>
          )}
        </>
      )}
    </main>
  );
}
