// Starts the demo (server.mjs) as a child process, as `pnpm demo` does, on a free port.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const server = fileURLToPath(new URL('../server.mjs', import.meta.url));
const URL_LINE = /running at (http:\/\/127\.0\.0\.1:\d+)/;
const OWN_ENV = [
  'DASHSCOPE_API_KEY',
  'DASHSCOPE_BASE_URL',
  'DASHSCOPE_HTTP_BASE_URL',
  'DASHSCOPE_REGION',
  'CHAT_MODEL',
  'CHAT_TOKEN_TTL_SECONDS',
  'PAI_EAS_REGION',
  'PAI_EAS_SERVICE',
  'PAI_EAS_INSTANCE',
];

/**
 * Spawns the demo with `env` added to a clean environment (PORT 0 = any free port unless given).
 * @returns the child, its output so far, and a promise of its `{ code, signal }` on exit
 */
export function spawnDemo(env = {}) {
  const base = { ...process.env };
  for (const name of OWN_ENV) delete base[name];
  const child = spawn(process.execPath, [server], {
    env: { ...base, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => {
    output.stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    output.stderr += d;
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output, exited };
}

/**
 * Spawns the demo and waits for the line with its URL.
 * @returns what {@link spawnDemo} returns, the URL, and `stop()`: Ctrl-C, then `{ code, signal }`
 */
export async function startDemo(env = {}) {
  const demo = spawnDemo(env);
  const { child, output, exited } = demo;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    return exited;
  };
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the demo printed no URL within 20 s:\n${output.stdout}${output.stderr}`));
    }, 20_000);
    const check = () => {
      const match = URL_LINE.exec(output.stdout);
      if (!match) return;
      clearTimeout(timer);
      resolve(match[1]);
    };
    child.stdout.on('data', check);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}) before printing its URL:\n${output.stderr}`));
    });
  }).catch(async (error) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { ...demo, url, stop };
}
