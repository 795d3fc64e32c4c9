/**
 * `@dashscope-token/emulator`: a local, strict Alibaba Cloud Model Studio (DashScope)
 * emulator for tests, demos and offline work.
 *
 * @packageDocumentation
 */
export { DEFAULT_EMULATOR_API_KEY, startEmulator } from './server.js';
export type {
  Emulator,
  EmulatorFault,
  EmulatorOptions,
  EmulatorRoute,
  EmulatorStats,
  RecordedRequest,
  RecordedRoute,
} from './types.js';
