/**
 * How busy the machine was during a run with work that is not the benchmark's: total busy CPU
 * time (`/proc/stat`, Linux, without interrupt time) minus the CPU time of the bench's own
 * processes. On a shared
 * machine this tells a quiet run from a disturbed one.
 */
import { readFileSync } from 'node:fs';

/** Busy CPU time of the whole machine so far, µs, or `undefined` where `/proc/stat` is missing. */
export function machineBusyMicros() {
  try {
    const line = readFileSync('/proc/stat', 'latin1').slice(0, 200).split('\n')[0];
    const [, user, nice, system, , , , , steal] = line.trim().split(/\s+/).map(Number);
    // Interrupt time is left out: the loopback TCP traffic of the benchmark itself is handled
    // there, and it is not in the processes' own CPU time. USER_HZ is 100: one tick is 10 ms.
    return (user + nice + system + steal) * 10_000;
  } catch {
    return undefined;
  }
}
