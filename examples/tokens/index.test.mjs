import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_EMULATOR_API_KEY } from '@dashscope-token/emulator';
import { expect, test } from 'vitest';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./index.mjs', import.meta.url));

test('the README example mints, caches with one mint for 1,000 callers, and reports errors by code', async () => {
  const env = { ...process.env };
  delete env.DASHSCOPE_API_KEY;
  const { stdout, stderr } = await run(process.execPath, [script], { env, timeout: 30_000 });
  expect(stderr).toBe('');
  expect(stdout).toMatch(/^mintToken: st-\S*… expires at \d{10}$/m);
  expect(stdout).toContain('createTokenProvider: 1 distinct key(s)');
  expect(stdout).toMatch(/mints: 1,/);
  expect(stdout).toContain('error: InvalidApiKey (HTTP 401, retryable: false)');
  // The emulator's permanent key is printed nowhere.
  expect(stdout).not.toContain(DEFAULT_EMULATOR_API_KEY);
  expect(stdout).not.toContain('sk-this-key-does-not-exist');
});
