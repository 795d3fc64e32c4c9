/**
 * How much CPU the rest of the machine used during a run: the CPU time of every process that is
 * not the benchmark's (nor one of its parents, nor a kernel thread such as `ksoftirqd`, which
 * carries the benchmark's own loopback traffic), from `/proc` (Linux). On a shared machine this
 * tells a quiet run from a disturbed one. Approximate: 10 ms ticks; a process that exits during
 * the run is counted through its parent (`cutime`/`cstime`) once reaped.
 */
import { readdirSync, readFileSync } from 'node:fs';

const PF_KTHREAD = 0x00200000;

function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name (which may contain spaces): state is field 3.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The pids of this process and of its parents. */
function ancestors() {
  const pids = new Set();
  let pid = process.pid;
  while (pid > 1 && !pids.has(pid)) {
    pids.add(pid);
    try {
      pid = Number(statFields(pid)[1]);
    } catch {
      break;
    }
  }
  return pids;
}

/**
 * CPU time (µs) used so far by processes outside `exclude` (and outside this process's
 * ancestry), or `undefined` where `/proc` is missing.
 */
export function otherProcessesMicros(exclude) {
  let names;
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const skip = ancestors();
  let ticks = 0;
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 0x30 || c > 0x39) continue;
    const pid = Number(name);
    if (skip.has(pid) || exclude.has(pid)) continue;
    try {
      const f = statFields(pid);
      if ((Number(f[6]) & PF_KTHREAD) !== 0) continue;
      // utime, stime, cutime, cstime: fields 14–17.
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // exited meanwhile
    }
  }
  // USER_HZ is 100 on Linux: one tick is 10 ms.
  return ticks * 10_000;
}
