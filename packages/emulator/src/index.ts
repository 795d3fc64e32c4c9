/**
 * `@dashscope-token/emulator`: a local, strict Alibaba Cloud Model Studio (DashScope)
 * emulator for tests, demos and offline work.
 *
 * @packageDocumentation
 */
export { type Endpoint, MODELS, type ModelInfo, type Thinking } from './catalogue.js';
export {
  DEFAULT_EMULATOR_API_KEY,
  DEFAULT_EMULATOR_WORKSPACE,
  startEmulator,
} from './server.js';
export { FAIL_MARKER, TASK_PENDING_SECONDS, TASK_RUNNING_SECONDS } from './tasks.js';
export type {
  Emulator,
  EmulatorFault,
  EmulatorOptions,
  EmulatorRoute,
  EmulatorStats,
  RecordedRequest,
  RecordedRoute,
} from './types.js';
