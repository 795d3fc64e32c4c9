import type { Clock } from './clock.js';
import type { FaultQueue } from './faults.js';
import type { KeyStore } from './keys.js';
import type { PaiEasState } from './pai-eas/options.js';
import type { Recorder } from './recorder.js';
import type { TaskStore } from './tasks.js';
import type { Workspaces } from './workspaces.js';

/** Everything a route handler may read or change; one per running emulator. */
export interface EmulatorState {
  clock: Clock;
  keys: KeyStore;
  workspaces: Workspaces;
  tasks: TaskStore;
  /** The emulator's own URL (result files are served under it); set once it listens. */
  baseUrl: string;
  faults: FaultQueue;
  recorder: Recorder;
  latencyMs: number;
  chunkDelayMs: number;
  cors: boolean | readonly string[];
  allowTemporaryKeyMinting: boolean;
  failStreamsOnExpiry: boolean;
  controlRoutes: boolean;
  reply: (prompt: string, model: string) => string;
  /** The emulated PAI-EAS (AccessKeys, services, nonces, Workbench logins). */
  paiEas: PaiEasState;
  tokensIssued: number;
  openConnections: number;
  /** WebSocket sessions open now. */
  openWebSockets: number;
}

/** Validates a millisecond setting (latency, chunk delay). */
export function checkMs(name: string, ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${name} must be a finite number of milliseconds >= 0`);
  }
  return ms;
}
