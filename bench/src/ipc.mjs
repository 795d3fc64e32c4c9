/**
 * A tiny request/response protocol over the `child_process.fork` IPC channel, so that the
 * upstream, each contender and the load generator run in their own processes (their own event
 * loops) and the orchestrator only sends them commands between measurements.
 */
import { fork } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Child side: answers `{id, cmd, args}` messages with `{id, result}` / `{id, error}` and tells
 * the parent `{ready, ...info}` once `info` is known. `cpu` answers the process's CPU time so far
 * (µs), `loopDelay` its event-loop delay since the last call (ms); `stop` exits the process normally (so that `--cpu-prof` profiles are written).
 */
export function serveParent(handlers, info) {
  // Enabled by the first `loopDelay` (a diagnostic): its 1 ms timer would disturb the runs.
  let loopDelay;
  process.on('message', async (message) => {
    if (message === null || typeof message !== 'object' || message.id === undefined) return;
    const { id, cmd, args } = message;
    if (cmd === 'loopDelay') {
      // Event-loop delay of this process since the last `loopDelay` (ms): who stalled a run.
      if (loopDelay === undefined) {
        loopDelay = monitorEventLoopDelay({ resolution: 1 });
        loopDelay.enable();
      }
      const h = loopDelay;
      const result = { max: h.max / 1e6, p99: h.percentile(99) / 1e6, mean: h.mean / 1e6 };
      h.reset();
      process.send({ id, result });
      return;
    }
    if (cmd === 'cpu') {
      // CPU time (user + system) of this process so far, µs: cost per request = delta / requests.
      const { user, system } = process.cpuUsage();
      process.send({ id, result: user + system });
      return;
    }
    if (cmd === 'stop') {
      process.send({ id, result: true }, () => process.exit(0));
      return;
    }
    const handler = handlers[cmd];
    try {
      if (handler === undefined) throw new Error(`unknown command ${cmd}`);
      const result = await handler(args ?? {});
      process.send({ id, result: result ?? null });
    } catch (error) {
      process.send({ id, error: String(error?.stack ?? error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true, ...info });
}

/**
 * Parent side: forks `script` and resolves once it reported ready.
 * @returns {Promise<{info: object, call: (cmd: string, args?: object) => Promise<any>, stop: () => Promise<void>, child: import('node:child_process').ChildProcess}>}
 */
export function startChild(script, { args = [], env = {}, execArgv = [], name = script } = {}) {
  const child = fork(script, args, {
    env: { ...process.env, NODE_ENV: 'production', ...env },
    execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const pending = new Map();
  let exited = false;
  child.on('message', (message) => {
    if (message?.id === undefined) return;
    const waiter = pending.get(message.id);
    if (waiter === undefined) return;
    pending.delete(message.id);
    if (message.error !== undefined) waiter.reject(new Error(`${name}: ${message.error}`));
    else waiter.resolve(message.result);
  });
  const exitedPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      for (const waiter of pending.values()) {
        waiter.reject(new Error(`${name} exited (${code ?? signal})`));
      }
      pending.clear();
      resolve();
    });
  });
  const call = (cmd, callArgs) =>
    new Promise((resolve, reject) => {
      if (exited) {
        reject(new Error(`${name} is not running`));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, cmd, args: callArgs });
    });
  const stop = async () => {
    if (exited) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    try {
      await call('stop');
    } catch {
      // exited already
    }
    await exitedPromise;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`${name} exited before it was ready (${code})`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.on('message', function onReady(message) {
      if (message?.ready !== true) return;
      child.off('message', onReady);
      child.off('exit', onExit);
      resolve({ info: message, call, stop, child });
    });
  });
}
