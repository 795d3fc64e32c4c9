/** Turns the raw results of a run into the Markdown report (`RESULTS.md`). */
import { max, mb, median, min, mops, ms, ratio, rps, spread } from './stats.mjs';

/** Per-round ratios `a/b` of req/s (the contenders ran in the same round, minutes apart at most). */
function roundRatios(throughput, a, b) {
  const ra = throughput[a];
  const rb = throughput[b];
  if (ra === undefined || rb === undefined) return [];
  return ra.map((run, i) => run.rps / rb[i].rps).filter((x) => Number.isFinite(x));
}

function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

const verdict = (ok) =>
  ok === undefined ? 'not measured' : ok ? '**holds**' : '**does not hold**';

export function report(results) {
  const { meta, contenders } = results;
  const names = Object.keys(contenders);
  const out = [];
  const targets = [];
  out.push('# dashscope-token benchmark results', '');
  out.push(
    `- Date: ${meta.date}`,
    `- Machine: ${meta.cpu}, ${meta.cores} cores, ${(meta.memory / 2 ** 30).toFixed(1)} GiB, ${meta.os}`,
    `- Node: ${meta.node}`,
    `- Command: \`${meta.command}\` (${meta.seconds} s)`,
    `- Load: autocannon, ${meta.connections} connections, ${meta.duration} s per run, ${meta.rounds} round(s), contenders interleaved (order rotated every round); \`POST\` with a ${meta.body}-byte JSON body; every server and the load generator in its own process on 127.0.0.1`,
    `- Load average (1 min) at start ${meta.load.start.toFixed(2)}, at end ${meta.load.end.toFixed(2)}, highest seen ${meta.load.max.toFixed(2)}`,
    '',
  );
  if (meta.quick)
    out.push('> `--quick` run: one short round, for checking the harness, not for publishing.', '');

  const tp = results.throughput;
  if (tp) {
    out.push('## Throughput and latency at full load', '');
    out.push(
      'req/s and latency: median over the rounds (min–max). Ratios: median of the per-round ratios (min–max).',
      '',
    );
    const rows = names.map((name) => {
      const runs = tp[name];
      const errors = runs.reduce((s, r) => s + r.non2xx + r.errors + r.timeouts, 0);
      return [
        contenders[name],
        spread(
          runs.map((r) => r.rps),
          rps,
        ),
        ms(median(runs.map((r) => r.latency.p50))),
        ms(median(runs.map((r) => r.latency.p99))),
        spread(roundRatios(tp, name, 'express-hpm'), ratio),
        spread(roundRatios(tp, name, 'fastify-proxy'), ratio),
        spread(roundRatios(tp, name, 'hono-proxy'), ratio),
        spread(roundRatios(tp, name, 'direct'), ratio),
        String(errors),
      ];
    });
    out.push(
      table(
        [
          'contender',
          'req/s',
          'p50 ms',
          'p99 ms',
          '× HPM',
          '× Fastify',
          '× Hono proxy()',
          '× direct',
          'non-2xx/errors',
        ],
        rows,
      ),
      '',
    );
    out.push(
      'CPU time per request (user + system, µs), by process: where the 2 cores go. The proxy process is single-threaded, so it cannot exceed 1,000,000 / its µs per request.',
      '',
      table(
        ['contender', 'load generator', 'proxy', 'upstream', 'total'],
        names.map((name) => {
          const c = (k) => median(tp[name].map((r) => r.cpu?.[k] ?? Number.NaN));
          const us = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
          return [
            contenders[name],
            us(c('load')),
            name === 'direct' ? '–' : us(c('proxy')),
            us(c('upstream')),
            us(c('load') + (name === 'direct' ? 0 : c('proxy')) + c('upstream')),
          ];
        }),
      ),
      '',
    );
    const foreign = names.flatMap((n) => tp[n].map((r) => r.foreign)).filter(Number.isFinite);
    if (foreign.length > 0) {
      out.push(
        `Other work on the machine during these runs (not the benchmark's processes): median ${median(foreign).toFixed(2)} cores, highest ${max(foreign).toFixed(2)} cores.`,
        '',
      );
    }
    const target = (label, a, b, limit) => {
      const r = roundRatios(tp, a, b);
      if (r.length === 0) {
        // One side ran, the other did not (a contender not built yet): say so.
        if (tp[a] !== undefined || tp[b] !== undefined) targets.push([label, '–', verdict()]);
        return;
      }
      targets.push([
        label,
        `${ratio(median(r))} (${ratio(min(r))}–${ratio(max(r))})`,
        verdict(median(r) >= limit),
      ]);
    };
    target(
      'Express + ours ≥ 1.8× Express + HPM (req/s; 2.0× the goal)',
      'express-ours',
      'express-hpm',
      1.8,
    );
    target(
      'node:http + core ≥ 2.2× Fastify + @fastify/http-proxy (req/s)',
      'node-ours',
      'fastify-proxy',
      2.2,
    );
    target('node:http + core ≥ 0.42× direct (req/s)', 'node-ours', 'direct', 0.42);
    target(
      'Fastify + ours ≥ 1.3× Fastify + @fastify/http-proxy (req/s)',
      'fastify-ours',
      'fastify-proxy',
      1.3,
    );
    target('Hono + ours ≥ 1.3× Hono proxy() (req/s)', 'hono-ours', 'hono-proxy', 1.3);
    target(
      'node:http + core with limits on ≥ 0.9× limits off (req/s)',
      'node-ours-limits',
      'node-ours',
      0.9,
    );
  }

  const hl = results.halfload;
  if (hl) {
    out.push('## Latency added at half load', '');
    out.push(
      `Each proxy at half of its own median full-load req/s, then direct at the same rate, ${hl.seconds} s each: an open-loop load at a fixed rate (the requests due are sent every millisecond over up to ${meta.connections} keep-alive connections; latency from sending to the end of the answer; the first 0.5 s not recorded). Added = proxy − direct within the round. (Half of *direct*'s maximum would overload every proxy on this machine: a proxy hop costs about twice the CPU of the upstream's own work, see the CPU table.)`,
      '',
    );
    const all = Object.values(hl.runs).flatMap((runs) =>
      runs.flatMap((r) => [r.proxied, r.direct]),
    );
    const repeated = all.filter((r) => r.attempts > 1).length;
    const disturbed = all.filter((r) => r.foreign > 0.25 || r.skipped > 0).length;
    out.push(
      `Runs repeated because other work on the machine disturbed them (> 0.25 cores) or the load generator itself stalled: ${repeated}; still disturbed after two repeats: ${disturbed}. Most requests in flight at once (of ${meta.connections} connections): ${max(all.map((r) => r.maxInFlight))}.`,
      '',
    );
    const rows = Object.keys(hl.runs).map((name) => {
      const runs = hl.runs[name];
      const added = runs.map((r) => r.proxied.latency.p99 - r.direct.latency.p99);
      const added50 = runs.map((r) => r.proxied.latency.p50 - r.direct.latency.p50);
      return [
        contenders[name],
        rps(hl.rates[name]),
        ms(median(runs.map((r) => r.proxied.latency.p50))),
        ms(median(runs.map((r) => r.proxied.latency.p99))),
        ms(median(runs.map((r) => r.direct.latency.p99))),
        spread(added50, ms),
        spread(added, ms),
      ];
    });
    out.push(
      table(
        [
          'contender',
          'rate req/s',
          'p50 ms',
          'p99 ms',
          'direct p99 ms',
          'added p50 ms',
          'added p99 ms',
        ],
        rows,
      ),
      '',
    );
    if (hl.runs['node-ours']) {
      const added = median(
        hl.runs['node-ours'].map((r) => r.proxied.latency.p99 - r.direct.latency.p99),
      );
      targets.push([
        'node:http + core: p99 added latency ≤ 1 ms at half load',
        `${ms(added)} ms`,
        verdict(added <= 1),
      ]);
    }
  }

  const sse = results.sse;
  if (sse) {
    out.push('## Server-sent events', '');
    out.push(
      `${sse.streams} concurrent streams, ${sse.chunks} chunks each, 20 ms apart. Delay = upstream's write → the client's receipt of the chunk (one monotonic clock for all processes). Added = contender − direct, within the round.`,
      '',
    );
    const direct = sse.runs.direct;
    const rows = names.map((name) => {
      const runs = sse.runs[name];
      const added = direct ? runs.map((r, i) => r.delay.p50 - direct[i].delay.p50) : [];
      const added99 = direct ? runs.map((r, i) => r.delay.p99 - direct[i].delay.p99) : [];
      return [
        contenders[name],
        ms(median(runs.map((r) => r.delay.p50))),
        ms(median(runs.map((r) => r.delay.p99))),
        name === 'direct' ? '–' : spread(added, ms),
        name === 'direct' ? '–' : spread(added99, ms),
        `${runs.reduce((s, r) => s + r.events, 0)} / ${runs.reduce((s, r) => s + r.errors, 0)}`,
      ];
    });
    out.push(
      table(
        [
          'contender',
          'delay p50 ms',
          'delay p99 ms',
          'added p50 ms',
          'added p99 ms',
          'chunks / errors',
        ],
        rows,
      ),
      '',
    );
    if (direct && sse.runs['node-ours']) {
      const added = median(sse.runs['node-ours'].map((r, i) => r.delay.p50 - direct[i].delay.p50));
      targets.push([
        'node:http + core: SSE added delay ≤ 2 ms per chunk (p50)',
        `${ms(added)} ms`,
        verdict(added <= 2),
      ]);
    }
    for (const [offName, onName, label] of [
      ['node-ours', 'node-ours-metered', 'node:http + core'],
      ['hono-ours', 'hono-ours-metered', 'Hono + ours'],
    ]) {
      const off = sse.runs[offName];
      const on = sse.runs[onName];
      if (!direct || !on) continue;
      const added = median(on.map((r, i) => r.delay.p50 - direct[i].delay.p50));
      const more = off
        ? `; ${ms(median(on.map((r, i) => r.delay.p50 - off[i].delay.p50)))} ms more than metering off`
        : '';
      const reported = on.reduce((n, r) => n + (r.usageEvents ?? 0), 0);
      const streams = on.length * sse.streams;
      targets.push([
        `${label}, metering on: SSE added delay ≤ 2 ms per chunk (p50)`,
        `${ms(added)} ms (usage reported for ${reported} of ${streams} streams${more})`,
        verdict(added <= 2 && reported === streams),
      ]);
    }
  }

  const st = results.stampede;
  if (st) {
    out.push('## Cold stampede', '');
    out.push(
      `A fresh node:http + createDashScopeHandler process (empty cache) gets ${st.requests.toLocaleString('en-US')} requests at once (100 connections × 100 pipelined requests); the upstream takes ${st.tokenDelayMs} ms to mint, so they all arrive while the first mint is in flight. Then ${st.provider.calls.toLocaleString('en-US')} concurrent \`getToken()\` calls on a fresh provider.`,
      '',
    );
    const rows = st.runs.map((r, i) => [
      `proxy, round ${i + 1}`,
      String(r.mints),
      `${r.ok} / ${r.requests}`,
      r.cache ? `${r.cache.misses} waited, ${r.cache.hits} hits` : '–',
    ]);
    rows.push([
      'provider.getToken()',
      String(st.provider.mints),
      `${st.provider.calls} calls, ${st.provider.distinct} distinct token(s)`,
      `${st.provider.stats.misses} waited, ${st.provider.stats.hits} hits`,
    ]);
    out.push(table(['', 'mints', '2xx / requests', 'cache'], rows), '');
    const most = Math.max(st.provider.mints, ...st.runs.map((r) => r.mints));
    const allOk = st.runs.every((r) => r.ok === r.requests);
    targets.push([
      '1 mint under a 10,000-request cold stampede',
      `${most} (all answered 2xx: ${allOk ? 'yes' : 'no'})`,
      verdict(most === 1 && allOk),
    ]);
  }

  const tk = results.token;
  if (tk) {
    out.push('## Token cache', '');
    out.push(
      'Cache hits per second, each call awaited, in one process (median (min–max) over the rounds).',
      '',
    );
    out.push(
      table(
        ['call', 'ops/s'],
        [
          [
            '`await provider.getToken()`',
            spread(
              tk.map((r) => r.plain),
              mops,
            ),
          ],
          [
            '`await provider.getToken({ apiKey, minValiditySeconds })` (what the proxy calls)',
            spread(
              tk.map((r) => r.withOptions),
              mops,
            ),
          ],
          ...(tk.every((r) => r.withRedis !== undefined)
            ? [
                [
                  'the same, with the Redis tier (`store: createRedisStore(...)`, a local redis-server)',
                  spread(
                    tk.map((r) => r.withRedis),
                    mops,
                  ),
                ],
              ]
            : []),
        ],
      ),
      '',
    );
    const plain = median(tk.map((r) => r.plain));
    targets.push(['cache-hit getToken() ≥ 2M ops/s', mops(plain), verdict(plain >= 2e6)]);
    if (tk.every((r) => r.withRedis !== undefined)) {
      const shared = median(tk.map((r) => r.withRedis));
      targets.push([
        'cache-hit getToken() with the Redis tier ≥ 2M ops/s (Redis not on the hot path)',
        mops(shared),
        verdict(shared >= 2e6),
      ]);
    }
  }

  const soak = results.soak;
  if (soak) {
    out.push('## Soak', '');
    const growth = soak.after.rss - soak.before.rss;
    out.push(
      `${soak.requests.toLocaleString('en-US')} requests through node:http + createDashScopeHandler (${meta.connections} connections, ${Math.round(soak.seconds)} s, ${rps(soak.run.rps)} req/s, ${soak.run.non2xx + soak.run.errors} non-2xx/errors). RSS and heap after a full GC, before (after 20,000 warm-up requests) and after.`,
      '',
      table(
        ['', 'RSS', 'heap used'],
        [
          ['before', mb(soak.before.rss), mb(soak.before.heapUsed)],
          ['after', mb(soak.after.rss), mb(soak.after.heapUsed)],
          ['growth', mb(growth), mb(soak.after.heapUsed - soak.before.heapUsed)],
        ],
      ),
      '',
    );
    targets.push([
      'RSS growth ≤ 20 MB over the soak',
      mb(growth),
      verdict(growth <= 20 * 1024 * 1024),
    ]);
  } else {
    targets.push(['RSS growth ≤ 20 MB over the soak', 'run with `--soak`', verdict(undefined)]);
  }

  out.push('## Targets', '', table(['target', 'measured', ''], targets), '');
  if (tp) {
    out.push('<details><summary>Every round (req/s)</summary>', '');
    out.push(
      table(
        ['contender', ...tp[names[0]].map((_, i) => `round ${i + 1}`)],
        names.map((n) => [contenders[n], ...tp[n].map((r) => rps(r.rps))]),
      ),
      '',
      '</details>',
      '',
    );
  }
  return out.join('\n');
}
