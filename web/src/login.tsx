// Login: the admin token is exchanged for a session cookie; the token itself is not kept.
import { useState } from 'preact/hooks';
import { ApiError, login } from './api.js';
import { Status, type Message } from './components.js';

export function Login(props: { onLoggedIn: () => void }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<Message | null>(null);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setMessage(null);
    try {
      await login(token.trim());
      setToken('');
      props.onLoggedIn();
    } catch (err) {
      const tooMany = err instanceof ApiError && err.status === 429;
      setMessage({ kind: 'error', text: tooMany ? 'Too many failed logins: wait a minute and try again.' : err instanceof ApiError && err.status === 401 ? 'Wrong admin token.' : String((err as Error).message) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <h1>Offsite console</h1>
      <form onSubmit={submit} class="card">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} required autofocus value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <p class="hint">
          Printed once by <code>offsite console</code> on its first start (or written to its <code>--token-file</code>). A new one:{' '}
          <code>offsite console token --reset</code>.
        </p>
        <button type="submit" class="primary" disabled={busy}>
          Log in
        </button>
        <Status message={message} />
      </form>
    </main>
  );
}
