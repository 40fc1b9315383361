// The server layer: HTTP shells over the engines. Fastify is loaded only when a server is made.
export {
  startConsoleServer,
  isLoopbackHost as isConsoleLoopbackHost,
  DEFAULT_CONSOLE_HOST,
  DEFAULT_CONSOLE_PORT,
  type ConsoleServerOptions,
  type RunningConsoleServer,
} from './console/index.js';
