/** A usage event as the executors report it, for the telemetry tests. */
import type { UsageEvent } from '../../src/index.js';

export const USAGE_EVENT: UsageEvent = Object.freeze({
  identity: 'user-1',
  keyHash: '0123456789abcdef',
  route: 'compatible',
  dialect: 'openai',
  path: '/compatible-mode/v1/chat/completions',
  model: 'qwen-plus',
  inputTokens: 12,
  outputTokens: 30,
  totalTokens: 42,
  requestId: 'req-1',
  status: 200,
  durationMs: 5,
  complete: true,
});
