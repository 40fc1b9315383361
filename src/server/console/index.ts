// The console server's public face.
export {
  startConsoleServer,
  createConsoleServer,
  isLoopbackHost,
  DEFAULT_CONSOLE_HOST,
  DEFAULT_CONSOLE_PORT,
  FAILED_LOGINS_PER_MINUTE,
  SESSION_COOKIE,
  CSRF_HEADER,
  SSE_HEARTBEAT_MS,
  type ConsoleServerOptions,
  type RunningConsoleServer,
} from './server.js';
