/** The emulated PAI-EAS: OpenAPI (V3-verified), Workbench login pages, and services. */
export type {
  EmulatedEasAction,
  EmulatorAccessKey,
  EmulatorEasService,
  EmulatorPaiEasOptions,
  PaiEasState,
} from './options.js';
export {
  createPaiEasState,
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_EAS_REGION,
  DEFAULT_EMULATOR_EAS_SERVICE,
  DEFAULT_EMULATOR_STS_CREDENTIALS,
} from './options.js';
export { matchPaiEasRoute } from './routes.js';
