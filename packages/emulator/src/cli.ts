/**
 * `dashscope-emulator`: runs the emulator from the command line until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_EMULATOR_API_KEY, startEmulator } from './server.js';

const USAGE = `Usage: dashscope-emulator [options]

A local, strict Alibaba Cloud Model Studio (DashScope) emulator.

Options:
  --port <n>            Port to listen on (default 0: a random free port)
  --host <host>         Interface to listen on (default 127.0.0.1)
  --api-key <key>       Accepted permanent API key; repeatable. Also read from
                        DASHSCOPE_EMULATOR_API_KEYS (comma-separated).
                        Default: ${DEFAULT_EMULATOR_API_KEY}
  --chunk-delay <ms>    Delay between streamed chunks (default 30)
  --latency <ms>        Latency added before every answer (default 0)
  --clock-offset <s>    Seconds added to the local clock (default 0)
  --allow-temporary-key-minting
                        Let st- temporary keys mint tokens (default: refused)
  --no-control-routes   Do not serve the /__emulator control routes
  --quiet               Do not log requests
  --help                Show this help
`;

function fail(message: string): never {
  process.stderr.write(`dashscope-emulator: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function number(
  name: string,
  value: string | undefined,
  fallback: number,
  integer = false,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    fail(`--${name} must be ${integer ? 'an integer' : 'a number'}, got "${value}"`);
  }
  return n;
}

async function main(): Promise<void> {
  let values: ReturnType<typeof parse>['values'];
  function parse() {
    return parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'api-key': { type: 'string', multiple: true },
        'chunk-delay': { type: 'string' },
        latency: { type: 'string' },
        'clock-offset': { type: 'string' },
        'allow-temporary-key-minting': { type: 'boolean' },
        'no-control-routes': { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  }
  try {
    values = parse().values;
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }

  const fromEnv = (process.env.DASHSCOPE_EMULATOR_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const keys = [...(values['api-key'] ?? []), ...fromEnv];
  const apiKeys = keys.length > 0 ? keys : [DEFAULT_EMULATOR_API_KEY];

  const quiet = values.quiet === true;
  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  try {
    emulator = await startEmulator({
      port: number('port', values.port, 0, true),
      host: values.host ?? '127.0.0.1',
      apiKeys,
      chunkDelayMs: number('chunk-delay', values['chunk-delay'], 30),
      latencyMs: number('latency', values.latency, 0),
      clockOffsetSeconds: number('clock-offset', values['clock-offset'], 0),
      allowTemporaryKeyMinting: values['allow-temporary-key-minting'] === true,
      controlRoutes: values['no-control-routes'] !== true,
      ...(quiet ? {} : { log: (line: string) => process.stdout.write(`${line}\n`) }),
    });
  } catch (error) {
    process.stderr.write(
      `dashscope-emulator: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }

  const hint = apiKeys
    .map((k) =>
      k === DEFAULT_EMULATOR_API_KEY ? k : `${k.slice(0, 6)}… (from your configuration)`,
    )
    .join(', ');
  // One write, so whoever reads the URL line has the key line too.
  process.stdout.write(
    `DashScope emulator listening on ${emulator.url}\n` +
      `Accepted API key${apiKeys.length > 1 ? 's' : ''}: ${hint}\n` +
      `Try: curl -X POST '${emulator.url}/api/v1/tokens?expire_in_seconds=60' -H 'Authorization: Bearer <key>'\n`,
  );

  // Under `npx` / `pnpm exec` a Ctrl-C arrives twice (from the terminal, and forwarded by the
  // package manager): a signal within a second of the first is that same Ctrl-C.
  let stoppingSince = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (stoppingSince) {
      if (performance.now() - stoppingSince > 1000) process.exit(1);
      return;
    }
    stoppingSince = performance.now();
    if (!quiet) process.stdout.write(`Received ${signal}, stopping.\n`);
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // A second Ctrl-C (more than a second later) while stopping exits at once (code 1).
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
