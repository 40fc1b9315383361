// One EventSource (GET /api/events, the session cookie) shared by every screen: `run` events
// carry a run's progress and result, `jobs` events the job list after a run ends.
import type { Job, Run } from './types.js';

type RunListener = (run: Run) => void;
type JobsListener = (jobs: Job[]) => void;

let source: EventSource | null = null;
const runListeners = new Set<RunListener>();
const jobsListeners = new Set<JobsListener>();
// The latest event of each recent run: a run's first events can arrive before the POST that
// started it has answered, i.e. before anyone watches it.
const latestRuns = new Map<string, Run>();

function parse<T>(e: Event): T | null {
  try {
    return JSON.parse((e as MessageEvent<string>).data) as T;
  } catch {
    return null;
  }
}

export function openEvents(): void {
  if (source) return;
  source = new EventSource('/api/events');
  source.addEventListener('run', (e) => {
    const run = parse<Run>(e);
    if (!run) return;
    latestRuns.set(run.id, run);
    if (latestRuns.size > 50) latestRuns.delete(latestRuns.keys().next().value as string);
    for (const l of runListeners) l(run);
  });
  source.addEventListener('jobs', (e) => {
    const data = parse<{ jobs: Job[] }>(e);
    if (data) for (const l of jobsListeners) l(data.jobs);
  });
}

export function closeEvents(): void {
  source?.close();
  source = null;
}

export function onRun(l: RunListener): () => void {
  runListeners.add(l);
  return () => runListeners.delete(l);
}

export function onJobs(l: JobsListener): () => void {
  jobsListeners.add(l);
  return () => jobsListeners.delete(l);
}

/**
 * Resolves with the run once it has finished. Events drive it; a slow poll of GET /api/runs/ID
 * covers an event missed while the stream reconnected.
 */
export function watchRun(id: string, fetchRun: (id: string) => Promise<Run>, onProgress: (run: Run) => void): Promise<Run> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (run: Run) => {
      if (done) return;
      onProgress(run);
      if (run.status === 'running') return;
      done = true;
      off();
      clearInterval(timer);
      resolve(run);
    };
    const off = onRun((run) => {
      if (run.id === id) finish(run);
    });
    const timer = setInterval(() => {
      fetchRun(id).then(finish, () => {});
    }, 2000);
    const seen = latestRuns.get(id);
    if (seen) finish(seen);
    else fetchRun(id).then(finish, () => {});
  });
}
