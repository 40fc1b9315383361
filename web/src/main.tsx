// The console's page: hash routes, a session resumed on reload, the login when there is none.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { isLoggedIn, logout, resumeSession, setUnauthorizedHandler } from './api.js';
import { Archives } from './archives.js';
import { closeEvents, openEvents } from './events.js';
import { JobView } from './job.js';
import { Jobs } from './jobs.js';
import { Login } from './login.js';
import { Settings } from './settings.js';
import './styles.css';
import { Sync } from './sync.js';

function currentRoute(): string {
  return location.hash.replace(/^#/, '') || '/jobs';
}

function go(route: string): void {
  if (currentRoute() !== route) location.hash = `#${route}`;
}

const nav = [
  ['/jobs', 'Jobs'],
  ['/settings', 'Settings'],
  ['/archives', 'Archives'],
  ['/sync', 'Sync'],
] as const;

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [ready, setReady] = useState(false);
  const [loggedIn, setLoggedIn] = useState(false);
  // Where to go after the login: the page the user asked for.
  const [afterLogin, setAfterLogin] = useState('/jobs');

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    setUnauthorizedHandler(() => {
      closeEvents();
      setLoggedIn(false);
      go('/login');
    });
    resumeSession().then((ok) => {
      setLoggedIn(ok);
      setReady(true);
      if (ok) openEvents();
      else {
        const r = currentRoute();
        if (r !== '/login') setAfterLogin(r);
        go('/login');
      }
    });
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (ready && !loggedIn && route !== '/login') {
      setAfterLogin(route);
      go('/login');
    }
    if (ready && loggedIn && route === '/login') go(afterLogin);
  }, [route, ready, loggedIn]);

  if (!ready) return <p class="loading">Loading…</p>;
  if (!loggedIn || route === '/login') {
    document.title = 'Log in — Offsite console';
    return (
      <Login
        onLoggedIn={() => {
          setLoggedIn(isLoggedIn());
          openEvents();
          go(afterLogin === '/login' ? '/jobs' : afterLogin);
        }}
      />
    );
  }

  const jobMatch = /^\/jobs\/(.+)$/.exec(route);
  let screen;
  if (jobMatch?.[1]) screen = <JobView key={jobMatch[1]} name={decodeURIComponent(jobMatch[1])} />;
  else if (route === '/settings') screen = <Settings />;
  else if (route === '/archives') screen = <Archives />;
  else if (route === '/sync') screen = <Sync />;
  else screen = <Jobs />;
  const section = jobMatch ? '/jobs' : route;
  const title = jobMatch?.[1] ? decodeURIComponent(jobMatch[1]) : (nav.find(([r]) => r === section)?.[1] ?? 'Jobs');
  document.title = `${title} — Offsite console`;

  return (
    <>
      <a class="skip-link" href="#content" onClick={(e) => {
        e.preventDefault();
        document.getElementById('content')?.focus();
      }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Offsite</span>
        <nav aria-label="Main">
          {nav.map(([r, label]) => (
            <a key={r} href={`#${r}`} aria-current={section === r ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class="link"
          onClick={async () => {
            closeEvents();
            await logout().catch(() => {});
            setLoggedIn(false);
            setAfterLogin('/jobs');
            go('/login');
          }}
        >
          Log out
        </button>
      </header>
      <div id="content" tabIndex={-1}>
        {screen}
      </div>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
