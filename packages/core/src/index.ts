/**
 * `@dashscope-token/core` (Node): everything of `@dashscope-token/core/neutral`, with undici as
 * the token engine's default transport, plus the `node:http` handler and the WebSocket proxy.
 */
export * from './handler/index.js';
export * from './neutral.js';
export { createTokenProvider, mintToken, mintTokenWithTiming } from './token/with-undici.js';
export type { UndiciTransportOptions } from './transport/undici.js';
export { undiciTransport } from './transport/undici.js';
export * from './ws/index.js';
