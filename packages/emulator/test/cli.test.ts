import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EMULATOR_API_KEY } from '../src/index.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkgDir, 'dist', 'cli.js');
const index = join(pkgDir, 'dist', 'index.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The CLI runs from dist/: build it when it is missing or older than src/. */
beforeAll(() => {
  const stale =
    !existsSync(cli) ||
    !existsSync(index) ||
    Math.min(statSync(cli).mtimeMs, statSync(index).mtimeMs) < newestSource(join(pkgDir, 'src'));
  if (stale) execFileSync('pnpm', ['exec', 'tsup'], { cwd: pkgDir, stdio: 'ignore' });
}, 120_000);

interface Run {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: pkgDir,
    env: { ...process.env, DASHSCOPE_EMULATOR_API_KEYS: '', ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function waitForUrl(r: Run): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const m = /listening on (http:\/\/\S+)/.exec(r.stdout());
    if (m?.[1]) return m[1];
    if (r.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  r.child.kill('SIGKILL');
  throw new Error(`the CLI printed no URL. stdout: ${r.stdout()} stderr: ${r.stderr()}`);
}

describe('dashscope-emulator CLI', () => {
  it('prints its URL and the default key, serves, and exits 0 on SIGINT', async () => {
    const r = run(['--port', '0', '--chunk-delay', '1']);
    const url = await waitForUrl(r);
    expect(r.stdout()).toContain(DEFAULT_EMULATOR_API_KEY);
    const res = await fetch(`${url}/api/v1/tokens?expire_in_seconds=30`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEFAULT_EMULATOR_API_KEY}` },
    });
    expect(res.status).toBe(200);
    r.child.kill('SIGINT');
    expect(await r.exit).toEqual({ code: 0, signal: null });
    // The request log line, without the key.
    expect(r.stdout()).toMatch(/POST \/api\/v1\/tokens\?expire_in_seconds=30 200 tokens/);
    expect(r.stdout().split(DEFAULT_EMULATOR_API_KEY)).toHaveLength(2);
  });

  it('exits 0 on SIGTERM and logs nothing with --quiet', async () => {
    const r = run(['--port', '0', '--quiet']);
    const url = await waitForUrl(r);
    await fetch(`${url}/compatible-mode/v1/models`);
    r.child.kill('SIGTERM');
    expect(await r.exit).toEqual({ code: 0, signal: null });
    expect(r.stdout()).not.toMatch(/GET \/compatible-mode/);
  });

  it('accepts --api-key and DASHSCOPE_EMULATOR_API_KEYS, printing only a prefix of custom keys', async () => {
    const flagKey = 'sk-aaa-cli-flag-key-aaaaaaaaaaaa';
    const envKey = 'sk-bbb-cli-env-key-bbbbbbbbbbbbb';
    const r = run(['--port', '0', '--quiet', '--api-key', flagKey], {
      DASHSCOPE_EMULATOR_API_KEYS: ` ${envKey} ,`,
    });
    const url = await waitForUrl(r);
    const mintWith = (key: string) =>
      fetch(`${url}/api/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
      });
    expect((await mintWith(flagKey)).status).toBe(200);
    expect((await mintWith(envKey)).status).toBe(200);
    expect((await mintWith(DEFAULT_EMULATOR_API_KEY)).status).toBe(401);
    r.child.kill('SIGINT');
    await r.exit;
    expect(r.stdout()).toContain('sk-aaa');
    expect(r.stdout()).not.toContain(flagKey);
    expect(r.stdout()).not.toContain(envKey);
  });

  it('prints help and exits 0 with --help', async () => {
    const r = run(['--help']);
    expect((await r.exit).code).toBe(0);
    expect(r.stdout()).toMatch(/--chunk-delay/);
  });

  it('exits 2 on an unknown flag or a bad number', async () => {
    const a = run(['--bogus']);
    expect((await a.exit).code).toBe(2);
    expect(a.stderr()).toMatch(/bogus/);
    const b = run(['--port', 'eighty']);
    expect((await b.exit).code).toBe(2);
  });
});

describe('built package', () => {
  it('leaves no handles behind: a process exits by itself after close()', async () => {
    const script = `
      import { startEmulator, DEFAULT_EMULATOR_API_KEY as KEY } from ${JSON.stringify(index)};
      const e = await startEmulator({ chunkDelayMs: 60000 });
      const auth = { authorization: 'Bearer ' + KEY, 'content-type': 'application/json' };
      const body = JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const res = await fetch(e.url + '/compatible-mode/v1/chat/completions', { method: 'POST', headers: auth, body });
      await res.body.getReader().read();
      e.fault('tokens', { type: 'hang' });
      const hanging = fetch(e.url + '/api/v1/tokens', { method: 'POST', headers: auth }).catch(() => 'failed');
      await e.waitForRequest((r) => r.route === 'tokens');
      const waiting = e.waitForRequest(() => false, 600000).catch(() => 'rejected');
      await e.close();
      console.log(await hanging, await waiting);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: pkgDir });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (c, s) => resolve([c, s])),
    );
    clearTimeout(killer);
    expect(out.trim()).toBe('failed rejected');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });
});
