// The chat demo: a page that talks to Model Studio either through the key-injecting proxy
// (the browser holds no key) or directly with a temporary key from POST /dashscope/token.
// With DASHSCOPE_API_KEY set it uses Model Studio; otherwise an embedded local emulator.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { resolveBaseUrl } from '@dashscope-token/core';
import {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_API_KEY,
  DEFAULT_EMULATOR_EAS_REGION,
  DEFAULT_EMULATOR_EAS_SERVICE,
  startEmulator,
} from '@dashscope-token/emulator';
import { dashscopeToken } from '@dashscope-token/express';
import { createPaiEas } from '@dashscope-token/pai-eas';
import express from 'express';
import { startMetrics } from './metrics.mjs';
import { usagePanel } from './usage.mjs';

const host = '127.0.0.1';
const port = Number(process.env.PORT || 3000);
const model = process.env.CHAT_MODEL || 'qwen-plus';
// Keys handed to the browser live 60 s and have at least 30 s left when handed out; the page
// fetches a new one 10 s before expiry. (CHAT_TOKEN_TTL_SECONDS shortens this, for the tests.)
const tokenTtl = Number(process.env.CHAT_TOKEN_TTL_SECONDS || 60);
const minValidity = Math.ceil(tokenTtl / 2);
const refreshBefore = Math.max(1, Math.min(10, minValidity - 2));

if (!Number.isInteger(port) || port < 0 || port > 65535)
  fail(`PORT must be a port number, not "${process.env.PORT}".`);
if (!Number.isInteger(tokenTtl) || tokenTtl < 6 || tokenTtl > 1800) {
  fail('CHAT_TOKEN_TTL_SECONDS must be an integer from 6 to 1800.');
}

// PAI-EAS: a real service when PAI_EAS_REGION and PAI_EAS_SERVICE are set (AccessKey from
// ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN), else the emulated EAS.
const realEas = Boolean(process.env.PAI_EAS_REGION && process.env.PAI_EAS_SERVICE);

let emulator;
let mode;
let directBaseUrl;
let endpoint = {};
if (process.env.DASHSCOPE_API_KEY) {
  // The key and the region/host come from DASHSCOPE_API_KEY and DASHSCOPE_REGION /
  // DASHSCOPE_BASE_URL; the middleware reads them itself.
  mode = 'model-studio';
  try {
    directBaseUrl = resolveBaseUrl();
  } catch (error) {
    fail(error.message);
  }
  console.log(`Using Alibaba Cloud Model Studio at ${directBaseUrl} (DASHSCOPE_API_KEY is set).`);
} else {
  mode = 'emulator';
  // cors: the page calls the emulator directly in "direct" mode, as it would call Model Studio.
  // chunkDelayMs: slow enough to watch the answer stream in.
  emulator = await startEmulator({ cors: true, chunkDelayMs: 60, paiEas: emulatedEas() });
  directBaseUrl = emulator.url;
  endpoint = { apiKey: DEFAULT_EMULATOR_API_KEY, baseUrl: emulator.url };
  console.log(
    `DASHSCOPE_API_KEY is not set: using the local Model Studio emulator at ${emulator.url} (offline, canned replies).`,
  );
}

if (!realEas && !emulator) {
  // Model Studio is real, PAI-EAS is not configured: the emulated EAS stands in for it.
  emulator = await startEmulator({ paiEas: emulatedEas() });
}
const eas = realEas
  ? {
      region: process.env.PAI_EAS_REGION,
      service: process.env.PAI_EAS_SERVICE,
      instance: process.env.PAI_EAS_INSTANCE ?? '',
      emulated: false,
    }
  : {
      region: DEFAULT_EMULATOR_EAS_REGION,
      service: DEFAULT_EMULATOR_EAS_SERVICE,
      instance: `${DEFAULT_EMULATOR_EAS_SERVICE.replace(/_/g, '-')}-7b56869574-44nq9`,
      emulated: true,
    };
if (eas.emulated) console.log(`PAI-EAS: the emulated EAS at ${emulator.url}.`);
else console.log(`PAI-EAS: service ${eas.service} in ${eas.region}.`);

function emulatedEas() {
  return { services: [{ name: DEFAULT_EMULATOR_EAS_SERVICE }] };
}

// DEMO STAND-IN for real sign-in: the page's "operator" switch sets this cookie itself, and the
// cookie is what authorizeWorkbench checks, so anyone can be an operator here. A real app checks its own session (a signed-in user
// with an operator role) here: a Workbench URL is a terminal in the model's container.
const OPERATOR_COOKIE = 'demo_operator=yes';
const isOperator = (req) =>
  String(req.headers.cookie ?? '')
    .split(/;\s*/)
    .includes(OPERATOR_COOKIE);

// The page's usage panel: every metered answer, added up by model (GET /usage).
const usage = usagePanel();

// In a real app, add `authorize: (req) => Boolean(req.user)` so that only your users get keys.
const dashscope = dashscopeToken({
  ...endpoint,
  onUsage: usage.onUsage,
  // The page streams without `stream_options.include_usage`: ask Model Studio for it anyway
  // (the extra usage chunk is removed from what the page receives).
  meterStreams: true,
  tokenRoute: { expireInSeconds: tokenTtl, minValiditySeconds: minValidity },
  // POST /dashscope/pai-eas/workbench and /dashscope/pai-eas/services/{service}/…
  paiEas: createPaiEas({
    region: eas.region,
    ...(eas.emulated && { endpoint: emulator.url, credentials: DEFAULT_EMULATOR_ACCESS_KEY }),
    services: [eas.service],
    authorizeWorkbench: (req) => isOperator(req),
  }),
});

// GET /metrics: Prometheus metrics of the handler (requests, mints, token usage by model).
const metrics = startMetrics([dashscope.handler]);

const app = express();
app.disable('x-powered-by');
app.get('/metrics', metrics.handle);
app.use(dashscope); // POST /dashscope/token, /dashscope/compatible-mode/v1/…, /dashscope/api/v1/…

// What the page needs to know. Never a key.
app.get('/config.json', (req, res) => {
  res.set('Cache-Control', 'no-store');
  res.json({
    mode,
    directBaseUrl,
    model,
    refreshBeforeSeconds: refreshBefore,
    paiEas: { ...eas, operator: isOperator(req) },
  });
});

// Tokens by model, requests and mints since the server started. Never a key.
app.get(
  '/usage',
  usage.handler(() => dashscope.handler.stats()),
);

// Offline only: make the emulator fail the next chat call, to see how the page reports it.
const simulations = {
  busy: { type: 'throttle', retryAfterSeconds: 2 },
  down: { type: 'html-502' },
  expired: { type: 'invalid-api-key' },
};
app.post('/simulate/:kind', (req, res) => {
  const fault = simulations[req.params.kind];
  if (!emulator || !fault) {
    res.status(404).json({ code: 'NotFound', message: 'No such simulation.' });
    return;
  }
  emulator.fault('chat', fault);
  res.status(204).end();
});

app.use(express.static(fileURLToPath(new URL('./public', import.meta.url))));

const server = createServer(app);
server.on('error', async (error) => {
  await closeAll();
  if (error.code === 'EADDRINUSE') {
    fail(
      `Port ${port} on ${host} is already in use (another demo still running?).\n` +
        `Stop it, or pick another port: PORT=3001 corepack pnpm demo`,
    );
  }
  fail(`Could not listen on ${host}:${port}: ${error.message}`);
});
server.listen(port, host, () => {
  const url = `http://${host}:${server.address().port}`;
  console.log(`\nChat demo running at ${url}  <- open this in your browser\n`);
  if (mode === 'emulator') {
    console.log('Offline mode: set DASHSCOPE_API_KEY (and DASHSCOPE_REGION) to use Model Studio.');
  }
  console.log('Press Ctrl-C to stop.');
});

async function closeAll() {
  server.close();
  server.closeAllConnections();
  await Promise.allSettled([dashscope.close(), emulator?.close(), metrics.close()]);
}

// Ctrl-C reaches this process twice under `pnpm demo`: from the terminal, and forwarded by
// pnpm. A signal within a second of the first is that same Ctrl-C; a later one stops at once.
// Once everything is closed the process exits itself, so that no late duplicate finds it half
// torn down (which would end it "by signal", and pnpm with it).
let stoppingSince = 0;
async function shutdown(signal) {
  if (stoppingSince) {
    if (performance.now() - stoppingSince > 1000) process.exit(1); // a second Ctrl-C: stop now
    return;
  }
  stoppingSince = performance.now();
  console.log(`\n${signal}: shutting down.`);
  const closed = closeAll();
  const stuck = setTimeout(() => {
    console.error('Something is still running after shutdown; exiting anyway.');
    process.exit(1);
  }, 3000);
  await closed;
  clearTimeout(stuck);
  console.log('Stopped.');
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

function fail(message) {
  console.error(message);
  process.exit(1);
}
