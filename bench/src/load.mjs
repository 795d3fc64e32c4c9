/**
 * The load generator, in its own process: runs autocannon (programmatic API) and the SSE client
 * on the orchestrator's command, and records every latency with sub-millisecond precision
 * (autocannon's own histogram has 1 ms resolution).
 */
import http from 'node:http';
import net from 'node:net';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { serveParent } from './ipc.mjs';

/** Growable list of float samples. */
class Samples {
  constructor(capacity = 1 << 16) {
    this.values = new Float64Array(capacity);
    this.length = 0;
  }
  push(value) {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.length++] = value;
  }
  /** `{p50, p90, p99, max, mean}` of the samples. */
  summary() {
    const sorted = this.values.slice(0, this.length).sort();
    const at = (q) =>
      sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: sorted.length,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      max: sorted.length === 0 ? 0 : sorted[sorted.length - 1],
      mean: sorted.length === 0 ? 0 : sum / sorted.length,
    };
  }
}

/** One autocannon run. Latencies in ms (2xx answers only). */
function runAutocannon(args) {
  const latencies = new Samples();
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: args.url + args.path,
        method: args.method ?? 'POST',
        headers: args.headers,
        body: args.body,
        connections: args.connections,
        pipelining: args.pipelining ?? 1,
        ...(args.amount !== undefined ? { amount: args.amount } : { duration: args.duration }),
        ...(args.overallRate !== undefined && { overallRate: args.overallRate }),
        timeout: args.timeout ?? 10,
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
        const ok = result['2xx'];
        resolve({
          ok,
          total: result.requests.total,
          seconds: result.duration ?? elapsed,
          rps: ok / (result.duration ?? elapsed),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          latency: latencies.summary(),
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
}

/**
 * `streams` concurrent SSE requests; for every chunk, the delay between the upstream's write
 * (`"t"` in the event, `process.hrtime` ns, a machine-wide monotonic clock) and its arrival here.
 * Delays in ms.
 */
function runSse(args) {
  const delays = new Samples(4096);
  const agent = new http.Agent({ keepAlive: true, maxSockets: args.streams });
  const target = new URL(args.url);
  let errors = 0;
  let events = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: args.path,
          method: 'POST',
          agent,
          headers: { ...args.headers, 'content-length': Buffer.byteLength(args.body) },
        },
        (res) => {
          if (res.statusCode !== 200) {
            errors++;
            res.resume();
            res.on('end', resolve);
            return;
          }
          res.setEncoding('latin1');
          let buffered = '';
          res.on('data', (text) => {
            const now = process.hrtime.bigint();
            buffered += text;
            let end = buffered.indexOf('\n\n');
            while (end >= 0) {
              const event = buffered.slice(0, end);
              buffered = buffered.slice(end + 2);
              const t = event.lastIndexOf('"t":');
              if (t >= 0) {
                const written = BigInt(event.slice(t + 4, event.indexOf('}', t)));
                delays.push(Number(now - written) / 1e6);
                events++;
              }
              end = buffered.indexOf('\n\n');
            }
          });
          res.on('end', resolve);
          res.on('error', () => {
            errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(args.body);
    });
  return Promise.all(Array.from({ length: args.streams }, one)).then(() => {
    agent.destroy();
    return { errors, events, delay: delays.summary() };
  });
}

/**
 * Counts complete HTTP/1.1 responses on a socket (`content-length` or chunked bodies), by
 * status class. Enough for the answers of the bench servers.
 */
class ResponseCounter {
  constructor() {
    this.buffer = Buffer.alloc(0);
    this.ok = 0;
    this.other = 0;
  }
  /** Feeds bytes; returns the number of responses completed. */
  feed(chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let done = 0;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return done;
      const head = this.buffer.toString('latin1', 0, end);
      const status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      let next;
      if (length) {
        next = end + 4 + Number(length[1]);
        if (this.buffer.length < next) return done;
      } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
        const last = this.buffer.indexOf('\r\n0\r\n\r\n', end);
        if (last < 0) return done;
        next = last + 7;
      } else {
        next = end + 4;
      }
      if (status >= 200 && status < 300) this.ok++;
      else this.other++;
      this.buffer = this.buffer.subarray(next);
      done++;
    }
  }
}

/**
 * A stampede: `connections` sockets each write `perConnection` pipelined requests at once, so
 * that `connections × perConnection` requests reach the server together. Resolves with the
 * counts of 2xx and other answers once every answer arrived (or after `timeoutMs`).
 */
function runStampede(args) {
  const target = new URL(args.url);
  const head =
    `POST ${args.path} HTTP/1.1\r\nhost: ${target.host}\r\n` +
    Object.entries(args.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `content-length: ${Buffer.byteLength(args.body)}\r\n\r\n`;
  const one = Buffer.from(head + args.body);
  const batch = Buffer.concat(Array.from({ length: args.perConnection }, () => one));
  const started = process.hrtime.bigint();
  let ok = 0;
  let other = 0;
  let errors = 0;
  const socketRun = () =>
    new Promise((resolve) => {
      const counter = new ResponseCounter();
      let answered = 0;
      const socket = net.connect({ host: target.hostname, port: Number(target.port) }, () => {
        socket.write(batch);
      });
      const timer = setTimeout(() => socket.destroy(), args.timeoutMs ?? 30_000);
      socket.on('data', (chunk) => {
        answered += counter.feed(chunk);
        if (answered >= args.perConnection) socket.end();
      });
      socket.on('error', () => errors++);
      socket.on('close', () => {
        clearTimeout(timer);
        ok += counter.ok;
        other += counter.other;
        resolve();
      });
    });
  return Promise.all(Array.from({ length: args.connections }, socketRun)).then(() => ({
    requests: args.connections * args.perConnection,
    ok,
    other,
    errors,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }));
}

/**
 * Open-loop load at a fixed rate, spread evenly (every millisecond, the requests due by then are
 * sent) over `connections` keep-alive connections (undici Pool). Latency in ms, from the moment
 * a request is handed to the client to the end of its answer (the timer's own lag is left out;
 * a stall of the server still counts, since the generator keeps sending). (autocannon's `overallRate`
 * sends each second's requests in a burst at full speed, which measures queueing, not the hop.)
 */
async function runFixedRate(args) {
  const pool = new Pool(args.url, { connections: args.connections, pipelining: 1 });
  const body = Buffer.from(args.body);
  const headers = { ...args.headers };
  const latencies = new Samples();
  let ok = 0;
  let other = 0;
  let errors = 0;
  let inFlight = 0;
  let sent = 0;
  const durationNs = BigInt(Math.round(args.duration * 1e9));
  const nsPerRequest = 1e9 / args.rate;
  // Open every connection first (one request each), so that the run does not begin with a
  // pool ramping up connection by connection under load.
  await Promise.all(
    Array.from({ length: args.connections }, () =>
      pool.request({ path: args.path, method: 'POST', headers, body }).then((r) => r.body.dump()),
    ),
  );
  const start = process.hrtime.bigint();
  // The first 500 ms settle (JIT, buffers): not recorded.
  const recordFrom = start + 500_000_000n;
  let maxInFlight = 0;
  const send = (due) => {
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    let status = 0;
    const sentAt = process.hrtime.bigint();
    pool.dispatch(
      { path: args.path, method: 'POST', headers, body },
      {
        onRequestStart() {},
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData() {},
        onResponseEnd() {
          inFlight--;
          if (status >= 200 && status < 300) {
            ok++;
            if (due >= recordFrom) latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
          } else other++;
        },
        onResponseError() {
          inFlight--;
          errors++;
        },
      },
    );
  };
  // A stall of the generator itself (its own GC, say) must not turn into a burst of every
  // request it missed: beyond 10 ms late, the missed ones are skipped (and counted).
  const maxLateNs = 10e6;
  let skipped = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const elapsed = process.hrtime.bigint() - start;
      const last = elapsed >= durationNs;
      const dueCount = Math.floor(Number(last ? durationNs : elapsed) / nsPerRequest);
      const lateCount = Math.floor(Number(elapsed) / nsPerRequest - maxLateNs / nsPerRequest);
      if (sent < lateCount) {
        skipped += lateCount - sent;
        sent = lateCount;
      }
      while (sent < dueCount) {
        send(start + BigInt(Math.round(sent * nsPerRequest)));
        sent++;
      }
      if (last) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await pool.close();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    ok,
    other,
    errors,
    sent,
    skipped,
    maxInFlight,
    rps: ok / seconds,
    latency: latencies.summary(),
  };
}

/** Every job starts on a collected heap (the process runs with `--expose-gc`), so that the
 * garbage of one run does not stall the next. */
const fresh = (job) => (args) => {
  globalThis.gc?.();
  return job(args);
};

serveParent(
  {
    autocannon: fresh(runAutocannon),
    sse: fresh(runSse),
    stampede: fresh(runStampede),
    fixedRate: fresh(runFixedRate),
  },
  {},
);
