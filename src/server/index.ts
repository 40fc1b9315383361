// The server layer: HTTP shells over the engines. Fastify is loaded only when a server is made.
export * from './sync/index.js';
export { isLoopbackHost } from './net.js';
