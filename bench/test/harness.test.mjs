/**
 * Smoke test of the bench harness itself (not a benchmark: no speed is asserted). Runs one tiny
 * round with the direct path, node:http + core and the Fastify and Hono contenders (Hono with ours too), and checks
 * that a results table comes out with positive req/s.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const benchDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

describe('pnpm bench', () => {
  let dir;
  let stdout;
  let markdown;
  let results;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bench-smoke-'));
    ({ stdout } = await run(
      process.execPath,
      [
        'src/run.mjs',
        '--quick',
        '--rounds',
        '1',
        '--duration',
        // Long enough that the slowest contender (Hono's proxy(), a few hundred req/s here)
        // answers some requests even on a loaded CI machine.
        '2',
        '--only',
        'direct,node-ours,fastify-ours,hono-proxy,hono-ours',
        '--phases',
        'throughput',
        '--out',
        path.join(dir, 'RESULTS.md'),
        '--json',
        path.join(dir, 'results.json'),
      ],
      { cwd: benchDir, timeout: 100_000 },
    ));
    markdown = await readFile(path.join(dir, 'RESULTS.md'), 'utf8');
    results = JSON.parse(await readFile(path.join(dir, 'results.json'), 'utf8'));
    // As long as the run may take (five contenders, each started and warmed up for 1 s).
  }, 100_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints and writes a results table with every contender', () => {
    expect(stdout).toBe(markdown);
    expect(markdown).toContain('| contender | req/s |');
    expect(markdown).toContain('| direct (no proxy) |');
    expect(markdown).toContain('| node:http + createDashScopeHandler |');
    expect(markdown).toContain('| Fastify + @dashscope-token/fastify |');
    expect(markdown).toContain('| Hono + hono/proxy proxy() |');
    expect(markdown).toContain('| Hono + @dashscope-token/hono |');
    expect(markdown).toContain(`Node: ${process.version}`);
  });

  it('measures positive req/s, without errors, for each contender', () => {
    for (const name of ['direct', 'node-ours', 'fastify-ours', 'hono-proxy', 'hono-ours']) {
      const [run] = results.throughput[name];
      expect(run.rps).toBeGreaterThan(0);
      expect(run.ok).toBeGreaterThan(0);
      expect(run.non2xx + run.errors).toBe(0);
    }
  });
});
