#!/usr/bin/env node
/**
 * `pnpm bench`: the dashscope-token proxy against the direct path and the proxies people use
 * today. Every server and the load generator run in their own processes on 127.0.0.1; the
 * contenders get the same connections, duration and payload, interleaved (the order rotates
 * every round) and repeated; medians and min–max are reported, ratios are taken within a round.
 *
 *   node src/run.mjs [--quick] [--soak] [--rounds N] [--duration S] [--connections N]
 *                    [--only a,b] [--phases throughput,halfload,sse,stampede,token]
 *                    [--out FILE] [--json FILE] [--cpu-prof]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startChild } from './ipc.mjs';
import { otherProcessesMicros } from './machine.mjs';
import { report } from './report.mjs';
import { median } from './stats.mjs';
import {
  CLIENT_HEADERS,
  FIXED_AUTHORIZATION,
  REQUEST_BODY,
  STREAM_REQUEST_BODY,
  UPSTREAM_PATH,
} from './workload.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const benchDir = path.dirname(here);

/** The contenders, in report order. `direct` is the upstream itself (no proxy process). */
const CONTENDERS = {
  direct: 'direct (no proxy)',
  'express-hpm': 'Express + http-proxy-middleware',
  'fastify-proxy': 'Fastify + @fastify/http-proxy',
  'hono-proxy': 'Hono + hono/proxy proxy()',
  'express-ours': 'Express + @dashscope-token/express',
  'fastify-ours': 'Fastify + @dashscope-token/fastify',
  'hono-ours': 'Hono + @dashscope-token/hono',
  'koa-ours': 'Koa + @dashscope-token/koa',
  'node-ours': 'node:http + createDashScopeHandler',
  'node-ours-limits': 'node:http + createDashScopeHandler, per-client limits on',
  'node-ours-metered': 'node:http + createDashScopeHandler, metering on (onUsage, meterStreams)',
  // References, only with --only:
  'express-hello': 'Express 5 hello world (reference: no proxy at all)',
  'node-undici': 'bare undici Pool proxy on node:http (reference: no checks)',
  'hono-ours-metered': 'Hono + @dashscope-token/hono, metering on (reference: the Fetch executor)',
};
const DEFAULT_CONTENDERS = [
  'direct',
  'express-hpm',
  'fastify-proxy',
  'hono-proxy',
  'express-ours',
  'fastify-ours',
  'hono-ours',
  'koa-ours',
  'node-ours',
  'node-ours-limits',
  'node-ours-metered',
];
const ALL_PHASES = ['throughput', 'halfload', 'sse', 'stampede', 'token'];

// `pnpm bench -- --quick` inside bench/ hands the script a leading `--`; turbo does not.
const argv = process.argv.slice(2);
const { values: flags } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    quick: { type: 'boolean', default: false },
    soak: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    phases: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'string' },
    'soak-requests': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  console.log(`pnpm bench [-- options]

  --quick               1 round of 1 s runs (a smoke run, not for publishing)
  --soak                also proxy 1,000,000 requests through node-ours and report its RSS
  --soak-requests N     requests of the soak (default 1000000)
  --rounds N            rounds of every measurement (default 3; --quick 1)
  --duration S          seconds of every throughput run (default 5; --quick 1)
  --connections N       concurrent connections of the load generator (default 50)
  --only a,b            contenders (default ${DEFAULT_CONTENDERS.join(',')}; also express-hello, node-undici, hono-ours-metered)
  --phases a,b          ${ALL_PHASES.join(',')} (default all)
  --out FILE            where the Markdown report goes (default RESULTS.md; --quick: RESULTS.quick.md)
  --json FILE           also write the raw results as JSON
  --cpu-prof            write a V8 CPU profile of every contender to bench/profiles/`);
  process.exit(0);
}

const quick = flags.quick;
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const duration = Number(flags.duration ?? (quick ? 1 : 5));
const connections = Number(flags.connections ?? 50);
const soakRequests = Number(flags['soak-requests'] ?? 1_000_000);
const selected = flags.only ? flags.only.split(',').map((s) => s.trim()) : DEFAULT_CONTENDERS;
const phases = new Set(flags.phases ? flags.phases.split(',').map((s) => s.trim()) : ALL_PHASES);
for (const name of selected) {
  const base = name.split(':')[0];
  if (!(base in CONTENDERS)) throw new Error(`unknown contender ${name}`);
  if (!(name in CONTENDERS))
    CONTENDERS[name] = `${CONTENDERS[base]} [${name.slice(base.length + 1)}]`;
}
for (const phase of phases) {
  if (!ALL_PHASES.includes(phase)) throw new Error(`unknown phase ${phase}`);
}
if (!(rounds >= 1 && duration > 0 && connections >= 1)) throw new Error('invalid options');
const outFile = flags.out
  ? path.resolve(flags.out)
  : path.join(benchDir, quick || flags.only || flags.phases ? 'RESULTS.quick.md' : 'RESULTS.md');
const profileDir = path.join(benchDir, 'profiles');
const command = `pnpm bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

const children = [];
async function spawn(script, options) {
  const child = await startChild(path.join(here, script), options);
  children.push(child);
  return child;
}
/** Resumes the contenders paused by `focus` (set once they exist). */
let resumeAll = () => {};
function resumePaused(proxies, paused) {
  for (const name of paused) proxies[name].child.kill('SIGCONT');
  paused.clear();
}
async function stopAll() {
  resumeAll();
  await Promise.all(children.map((c) => c.stop().catch(() => {})));
}
process.on('SIGINT', () => {
  for (const c of children) c.child.kill('SIGKILL');
  process.exit(130);
});

const log = (message) => process.stderr.write(`${message}\n`);
const pause = (msMs) => new Promise((resolve) => setTimeout(resolve, msMs));
const loads = [];
const sampleLoad = () => loads.push(os.loadavg()[0]);

/**
 * Runs `fn` and measures the CPU time it took in `processes` (µs) and what other processes on
 * the machine used meanwhile (`foreign`, in cores: work that is not the benchmark's).
 */
async function metered(processes, fn) {
  const ours = new Set(children.map((c) => c.child.pid));
  const otherBefore = otherProcessesMicros(ours);
  const started = process.hrtime.bigint();
  const before = await Promise.all(processes.map((p) => p?.call('cpu')));
  const result = await fn();
  const after = await Promise.all(processes.map((p) => p?.call('cpu')));
  const wall = Number(process.hrtime.bigint() - started) / 1000;
  const otherAfter = otherProcessesMicros(ours);
  const cpu = processes.map((p, i) => (p === undefined ? 0 : after[i] - before[i]));
  const foreign =
    otherBefore === undefined ? Number.NaN : Math.max(0, otherAfter - otherBefore) / wall;
  return { result, cpu, foreign };
}

/** `list` rotated by `r` places: the interleaving order of round `r`. */
const rotate = (list, r) => list.map((_, i) => list[(i + r) % list.length]);

async function main() {
  const startedAt = new Date();
  const t0 = Date.now();
  sampleLoad();
  if (os.loadavg()[0] > 1.5) {
    log(`warning: load average ${os.loadavg()[0].toFixed(2)} > 1.5: figures will be noisy`);
  }

  const upstream = await spawn('upstream.mjs', { name: 'upstream' });
  const upstreamUrl = upstream.info.url;
  const load = await spawn('load.mjs', { name: 'load generator', execArgv: ['--expose-gc'] });

  const profileArgs = (name) =>
    flags['cpu-prof']
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${name.replace(/[^\w.-]+/g, '_')}.cpuprofile`,
          `--cpu-prof-interval=${process.env.BENCH_CPU_PROF_INTERVAL ?? 1000}`,
        ]
      : [];
  if (flags['cpu-prof']) mkdirSync(profileDir, { recursive: true });

  /** name → {url, path, headers} of the target the load generator hits. */
  const targets = {};
  const proxies = {};
  for (const name of selected) {
    if (name === 'direct') {
      targets.direct = {
        url: upstreamUrl,
        path: UPSTREAM_PATH,
        headers: { ...CLIENT_HEADERS, authorization: FIXED_AUTHORIZATION },
      };
      continue;
    }
    const child = await spawn('contender.mjs', {
      name,
      args: [name, upstreamUrl],
      execArgv: profileArgs(name),
    });
    proxies[name] = child;
    targets[name] = { url: child.info.url, path: child.info.path, headers: CLIENT_HEADERS };
  }
  const names = selected;
  /**
   * Only the contender being measured runs: the others are paused (SIGSTOP) so that their idle
   * work (V8 shrinking the heap after a run, timers) takes no CPU from the measured processes
   * (on 2 cores, such a burst in an idle process shows in the p99 of the running one).
   */
  const paused = new Set();
  const focus = (name) => {
    // A paused process's profile would show the pause as work: no pausing with --cpu-prof.
    if (flags['cpu-prof']) return;
    for (const [other, child] of Object.entries(proxies)) {
      if (other === name && paused.has(other)) {
        child.child.kill('SIGCONT');
        paused.delete(other);
      } else if (other !== name && !paused.has(other)) {
        child.child.kill('SIGSTOP');
        paused.add(other);
      }
    }
  };
  resumeAll = () => resumePaused(proxies, paused);
  const hit = (name, extra) => {
    focus(name);
    return load.call('autocannon', {
      ...targets[name],
      body: REQUEST_BODY,
      connections,
      duration,
      ...extra,
    });
  };

  const results = {
    meta: {
      date: startedAt.toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memory: os.totalmem(),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      command,
      rounds,
      duration,
      connections,
      body: Buffer.byteLength(REQUEST_BODY),
      quick,
    },
    contenders: Object.fromEntries(names.map((n) => [n, CONTENDERS[n]])),
  };

  // Warm-up: JIT, keep-alive pools, and the first (and only) mint of ours.
  log(`warm-up (${names.join(', ')})`);
  for (const name of names) {
    const warm = await hit(name, { duration: quick ? 0.5 : 1 });
    if (warm.ok === 0 || warm.non2xx > 0 || warm.errors > 0) {
      throw new Error(`${name} does not answer 2xx: ${JSON.stringify(warm)}`);
    }
  }

  if (phases.has('throughput')) {
    log(`throughput: ${rounds} round(s) × ${names.length} contender(s) × ${duration} s`);
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (const name of rotate(names, r)) {
        sampleLoad();
        focus(name);
        const measured = await metered([load, upstream, proxies[name]], () => hit(name));
        const run = measured.result;
        const perRequest = (i) => measured.cpu[i] / Math.max(1, run.total);
        run.cpu = { load: perRequest(0), upstream: perRequest(1), proxy: perRequest(2) };
        run.foreign = measured.foreign;
        runs[name][r] = run;
        log(
          `  round ${r + 1} ${name}: ${Math.round(run.rps)} req/s, p99 ${run.latency.p99.toFixed(2)} ms`,
        );
        await pause(200);
      }
    }
    results.throughput = runs;
  }

  if (phases.has('halfload') && results.throughput && names.includes('direct')) {
    const halfDuration = Math.max(1, duration * 0.6);
    const proxied = names.filter((n) => n !== 'direct');
    const rates = Object.fromEntries(
      proxied.map((n) => [n, Math.round(median(results.throughput[n].map((x) => x.rps)) / 2)]),
    );
    log(
      `half load: each proxy at half its median req/s, direct at the same rate, ${halfDuration} s`,
    );
    const runs = Object.fromEntries(proxied.map((n) => [n, []]));
    let retries = 8;
    // One unrecorded pass at the rate first: the processes settle after the full-load runs.
    for (const name of proxied) {
      focus(name);
      await load.call('fixedRate', {
        ...targets[name],
        body: REQUEST_BODY,
        connections,
        duration: 1,
        rate: rates[name],
      });
    }
    for (let r = 0; r < rounds; r++) {
      for (const name of rotate(proxied, r)) {
        sampleLoad();
        // A run disturbed by other work on the machine (or by a stall of the load generator)
        // measures that, not the hop: it is repeated, up to twice (8 repeats in all at most,
        // to stay within the time budget).
        const fixed = async (who) => {
          let run;
          for (let attempt = 0; attempt < 3; attempt++) {
            if (attempt > 0 && retries-- <= 0) break;
            focus(who);
            const measured = await metered([load, upstream, proxies[who]], () =>
              load.call('fixedRate', {
                ...targets[who],
                body: REQUEST_BODY,
                connections,
                duration: halfDuration,
                rate: rates[name],
              }),
            );
            run = { ...measured.result, foreign: measured.foreign, attempts: attempt + 1 };
            const disturbed = measured.foreign > 0.25 || run.skipped > 0;
            if (!disturbed) break;
            log(
              `    ${who}: disturbed (other work ${measured.foreign.toFixed(2)} cores, generator stalled: ${run.skipped} requests skipped), again`,
            );
            await pause(1000);
          }
          return run;
        };
        const proxiedRun = await fixed(name);
        await pause(100);
        const directRun = await fixed('direct');
        runs[name][r] = { proxied: proxiedRun, direct: directRun };
        log(
          `  round ${r + 1} ${name} @${rates[name]}/s: p99 ${proxiedRun.latency.p99.toFixed(2)} ms vs direct ${directRun.latency.p99.toFixed(2)} ms`,
        );
        await pause(100);
      }
    }
    results.halfload = { rates, runs, seconds: halfDuration };
  }

  if (phases.has('sse')) {
    const chunks = quick ? 10 : 20;
    await upstream.call('configure', { sseChunks: chunks, sseIntervalMs: 20 });
    log(`sse: 50 concurrent streams × ${chunks} chunks, ${rounds} round(s)`);
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (const name of rotate(names, r)) {
        sampleLoad();
        focus(name);
        const usageBefore = await proxies[name]?.call('usageEvents');
        const run = await load.call('sse', {
          ...targets[name],
          headers: { ...targets[name].headers, accept: 'text/event-stream' },
          body: STREAM_REQUEST_BODY,
          streams: 50,
        });
        // A metering contender: how many complete answers it reported (one per stream).
        const usageAfter = await proxies[name]?.call('usageEvents');
        if (typeof usageAfter === 'number') run.usageEvents = usageAfter - usageBefore;
        runs[name][r] = run;
        log(`  round ${r + 1} ${name}: chunk delay p50 ${run.delay.p50.toFixed(2)} ms`);
        await pause(100);
      }
    }
    results.sse = { chunks, streams: 50, runs };
  }

  if (phases.has('stampede')) {
    const requests = 10_000;
    log(`stampede: ${requests} concurrent first requests on a cold node-ours, ${rounds} round(s)`);
    const runs = [];
    await upstream.call('configure', { tokenDelayMs: 200 });
    for (let r = 0; r < rounds; r++) {
      const cold = await startChild(path.join(here, 'contender.mjs'), {
        name: 'node-ours (cold)',
        args: ['node-ours', upstreamUrl],
      });
      try {
        const before = await upstream.call('stats');
        const run = await load.call('stampede', {
          url: cold.info.url,
          path: cold.info.path,
          headers: CLIENT_HEADERS,
          body: REQUEST_BODY,
          connections: 100,
          perConnection: requests / 100,
        });
        const after = await upstream.call('stats');
        const cache = await cold.call('tokenStats');
        runs.push({
          requests,
          ok: run.ok,
          other: run.other,
          errors: run.errors,
          mints: after.mints - before.mints,
          cache,
        });
        log(`  round ${r + 1}: ${after.mints - before.mints} mint(s), ${run.ok} × 2xx`);
      } finally {
        await cold.stop();
      }
    }
    const micro = await spawn('micro.mjs', { name: 'micro', args: [upstreamUrl] });
    const before = await upstream.call('stats');
    const direct = await micro.call('providerStampede', { calls: requests });
    const after = await upstream.call('stats');
    await upstream.call('configure', { tokenDelayMs: 0 });
    results.stampede = {
      requests,
      tokenDelayMs: 200,
      runs,
      provider: { calls: requests, mints: after.mints - before.mints, ...direct },
    };
  }

  if (phases.has('token')) {
    log('token cache: cache-hit getToken() ops/s');
    const micro = await spawn('micro.mjs', { name: 'micro', args: [upstreamUrl] });
    const runs = [];
    for (let r = 0; r < rounds; r++) {
      sampleLoad();
      runs.push(await micro.call('getTokenOps', { ms: quick ? 300 : 1000 }));
    }
    results.token = runs;
  }

  if (flags.soak) {
    log(`soak: ${soakRequests.toLocaleString('en-US')} requests through node-ours`);
    const soaked = await spawn('contender.mjs', {
      name: 'node-ours (soak)',
      args: ['node-ours', upstreamUrl],
      execArgv: ['--expose-gc'],
    });
    const target = { url: soaked.info.url, path: soaked.info.path, headers: CLIENT_HEADERS };
    await load.call('autocannon', { ...target, body: REQUEST_BODY, connections, amount: 20_000 });
    const before = await soaked.call('mem');
    const started = Date.now();
    const run = await load.call('autocannon', {
      ...target,
      body: REQUEST_BODY,
      connections,
      amount: soakRequests,
    });
    const after = await soaked.call('mem');
    results.soak = {
      requests: soakRequests,
      seconds: (Date.now() - started) / 1000,
      run,
      before,
      after,
    };
    log(`  RSS ${before.rss} → ${after.rss}`);
  }

  sampleLoad();
  results.meta.load = { start: loads[0], end: loads[loads.length - 1], max: Math.max(...loads) };
  results.meta.seconds = Math.round((Date.now() - t0) / 1000);

  const markdown = report(results);
  writeFileSync(outFile, markdown);
  if (flags.json) writeFileSync(path.resolve(flags.json), JSON.stringify(results, null, 2));
  process.stdout.write(markdown);
  log(`written to ${path.relative(process.cwd(), outFile) || outFile}`);
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await stopAll();
}
