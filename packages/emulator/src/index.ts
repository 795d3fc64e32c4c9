/**
 * `@dashscope-token/emulator`: a local, strict Alibaba Cloud Model Studio (DashScope)
 * emulator for tests, demos and offline work.
 *
 * @packageDocumentation
 */
export { type Endpoint, MODELS, type ModelInfo, type Thinking } from './catalogue.js';
// PAI-EAS: the emulated OpenAPI, Workbench and services.
export type {
  EmulatedEasAction,
  EmulatorAccessKey,
  EmulatorEasService,
  EmulatorPaiEasOptions,
} from './pai-eas/index.js';
export {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_EAS_REGION,
  DEFAULT_EMULATOR_EAS_SERVICE,
  DEFAULT_EMULATOR_STS_CREDENTIALS,
} from './pai-eas/index.js';
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
