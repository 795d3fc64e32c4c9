/**
 * The attack corpus (`attack-corpus.json`): every entry is sent as raw bytes to Express, to
 * Fastify 4 and 5, plain node:http and the fetch handler behind a node:http → Request bridge,
 * must get one of its expected answers, and must reach nobody upstream: the emulator records
 * no request for it, not even a mint. No answer contains the permanent key. (Entries a Fetch
 * runtime normalises before the handler sees them are checked for what the handler gets: see
 * below.)
 */
import { readFileSync } from 'node:fs';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reachesFetchUnchanged } from '../../../packages/fetch/test/node-bridge.js';
import {
  type App,
  captured,
  FASTIFY_APPS,
  keyFragments,
  PERMANENT_KEYS,
  RUNTIME_APPS,
  sendRaw,
  startExpressApp,
  startFastifyApp,
  startFetchApp,
  startHonoApp,
  startNodeApp,
  startRuntimeApp,
  VIA_REQUEST,
} from './apps.js';

interface Entry {
  name: string;
  category: string;
  raw: string;
  expect: { status: (number | 'closed')[] | 'closed' };
  reason: string;
}

const corpus = JSON.parse(
  readFileSync(new URL('../attack-corpus.json', import.meta.url), 'utf8'),
) as {
  entries: Entry[];
};

let emulator: Emulator;
const apps: App[] = [];
/** Proxied calls made for corpus entries the runtime normalised into well-formed requests. */
let normalisedUpstream = 0;
/** Mints the handler made for them (its first key, or a vended one). */
let normalisedMints = 0;

const PROXIED_ROUTES: string[] = ['generation', 'chat', 'embeddings', 'models'];

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [...PERMANENT_KEYS] });
  apps.push(
    await startExpressApp(emulator),
    await startNodeApp(emulator),
    await startFetchApp(emulator),
    await startHonoApp(emulator),
  );
  for (const runtime of RUNTIME_APPS) apps.push(await startRuntimeApp(emulator, runtime));
  for (const name of Object.keys(FASTIFY_APPS) as (keyof typeof FASTIFY_APPS)[]) {
    apps.push(await startFastifyApp(emulator, name));
  }
  console.info(
    `[attack-corpus] ${corpus.entries.length} entries × ${apps.length} servers, categories: ${JSON.stringify(
      corpus.entries.reduce<Record<string, number>>((n, e) => {
        n[e.category] = (n[e.category] ?? 0) + 1;
        return n;
      }, {}),
    )}`,
  );
});
beforeEach(() => {
  emulator.clearRequests();
});
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  const stats = emulator.stats();
  await emulator.close();
  // Nothing at all reached Model Studio during the corpus, beyond the control requests (one mint per app).
  // (A normalised entry may make the fetch handler mint its proxy key before the control.)
  expect(stats.tokensIssued).toBeGreaterThanOrEqual(apps.length);
  expect(stats.tokensIssued).toBeLessThanOrEqual(apps.length + normalisedMints);
  // Proxied calls: the control's, plus the well-formed calls normalised entries became.
  const proxied = PROXIED_ROUTES.reduce((n, route) => n + (stats.requests[route] ?? 0), 0);
  expect(proxied).toBe(apps.length + normalisedUpstream);
  expect(keyFragments(captured.sent.join('\n'))).toEqual([]);
  expect(keyFragments(captured.logs.join('\n'))).toEqual([]);
});

describe('attack corpus', () => {
  it('has at least 50 entries across every category of the threat model', () => {
    expect(corpus.entries.length).toBeGreaterThanOrEqual(50);
    expect(new Set(corpus.entries.map((e) => e.category))).toEqual(
      new Set([
        'traversal',
        'target-form',
        'injection',
        'size',
        'smuggling',
        'method',
        'protocol',
        'csrf',
      ]),
    );
    expect(new Set(corpus.entries.map((e) => e.name)).size).toBe(corpus.entries.length);
  });

  for (const server of [
    'express',
    'node:http',
    'fetch',
    'hono',
    ...RUNTIME_APPS,
    ...Object.keys(FASTIFY_APPS),
  ]) {
    describe(server, () => {
      it.each(corpus.entries)('$category: $name', async (entry) => {
        const app = apps.find((a) => a.name === server)!;
        const answer = await sendRaw(app.port, entry.raw);
        // A runtime's own process is out of reach of the socket capture: record what came back.
        if (app.handlers.length === 0) captured.sent.push(answer.text);
        // Bun's and Deno's own HTTP parsers are not Node's: each answers some entries itself with
        // another status (400 for 431, 505, a closed connection) and hands others on, mended
        // (Deno: a bare LF as a line end, HTTP/1.1 without Host), so every entry is judged as
        // a normalised one there.
        const runtime = (RUNTIME_APPS as readonly string[]).includes(server);
        if (runtime || (VIA_REQUEST.includes(server) && !reachesFetchUnchanged(entry.raw))) {
          // The runtime (here: the WHATWG URL and Request the bridge or @hono/node-server
          // builds, as Bun, Deno and Next.js do) normalised the target or refused the request before the handler saw
          // it: the handler answers the request it was given, which reaches nobody upstream
          // unless it is a well-formed API call on the configured origin.
          // (Bun answers a raw CR or NUL in the request line with 505 itself.)
          expect(
            answer.status === 'closed' || answer.status < 500 || answer.status === 505,
            answer.text.slice(0, 200),
          ).toBe(true);
          await expect
            .poll(() => app.handlers.reduce((n, h) => n + h.stats().activeRequests, 0))
            .toBe(0);
          for (const r of emulator.requests) {
            if (r.route === 'tokens') {
              // The handler's own mint for the request it was given (never a proxied mint).
              expect(r.headers.authorization).toMatch(/^Bearer sk-/);
              normalisedMints++;
              continue;
            }
            expect(r.path, 'a normalised, safe path').toMatch(
              /^\/(api|compatible-mode)\/v1\/[\w/.-]*(\?|$)/,
            );
            expect(r.path).not.toMatch(/(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\/i);
          }
          normalisedUpstream += emulator.requests.filter((r) =>
            PROXIED_ROUTES.includes(r.route),
          ).length;
          return;
        }
        const expected = entry.expect.status === 'closed' ? ['closed'] : entry.expect.status;
        expect(expected, `${entry.reason}; got ${answer.text.slice(0, 200)}`).toContain(
          answer.status,
        );
        // Whatever the handler started for it must have finished, without reaching upstream.
        await expect
          .poll(() => app.handlers.reduce((n, h) => n + h.stats().activeRequests, 0))
          .toBe(0);
        expect(emulator.requests, 'reached Model Studio').toEqual([]);
      });
    });
  }

  it('control: the same servers do proxy a well-formed request (the zero above means something)', async () => {
    for (const app of apps) {
      const answer = await sendRaw(
        app.port,
        'GET /dashscope/compatible-mode/v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      expect(answer.status).toBe(200);
    }
    expect(emulator.requests.filter((r) => r.route === 'models')).toHaveLength(apps.length);
  });
});
