// Express + @dashscope-token/express: a token route for browsers and a key-injecting proxy.
// With DASHSCOPE_API_KEY set it talks to Model Studio; otherwise to a local emulator.
import { DEFAULT_EMULATOR_API_KEY, startEmulator } from '@dashscope-token/emulator';
import { dashscopeToken } from '@dashscope-token/express';
import express from 'express';

const host = '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);

// Real Model Studio: the key and the region/host come from DASHSCOPE_API_KEY,
// DASHSCOPE_REGION / DASHSCOPE_BASE_URL (read by the middleware itself).
let emulator;
let options = {};
if (process.env.DASHSCOPE_API_KEY) {
  console.log('Using Alibaba Cloud Model Studio (DASHSCOPE_API_KEY is set).');
} else {
  emulator = await startEmulator();
  options = { apiKey: DEFAULT_EMULATOR_API_KEY, baseUrl: emulator.url };
  console.log(
    `DASHSCOPE_API_KEY is not set: using the local DashScope emulator at ${emulator.url}`,
  );
}

// In a real app, add `authorize: (req) => Boolean(req.user)` so that only your users get keys.
const dashscope = dashscopeToken(options);

const app = express();
app.use(dashscope);

// Your own routes can use a temporary key too (keep it on the server).
app.get('/key-status', async (req, res, next) => {
  try {
    const { expiresAt } = await req.dashscope.getToken();
    res.json({ ok: true, expires_at: expiresAt });
  } catch (error) {
    next(error);
  }
});

const server = app.listen(port, host, () => {
  const base = `http://${host}:${port}`;
  console.log(`Listening on ${base}

Try:
  curl -s -X POST ${base}/dashscope/token

  curl -s ${base}/dashscope/compatible-mode/v1/chat/completions \\
    -H 'content-type: application/json' \\
    -d '{"model":"qwen-plus","messages":[{"role":"user","content":"Hello!"}]}'

  curl -sN ${base}/dashscope/compatible-mode/v1/chat/completions \\
    -H 'content-type: application/json' \\
    -d '{"model":"qwen-plus","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

Press Ctrl-C to stop.`);
});

// Ctrl-C reaches this process twice under `pnpm start`: from the terminal, and forwarded by
// pnpm. The second is the same Ctrl-C, so it is ignored; and the process exits itself once
// everything is closed, so that no late duplicate finds it half torn down (which would end it
// "by signal", and pnpm with it).
let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: shutting down`);
  server.close();
  server.closeAllConnections();
  await dashscope.close();
  await emulator?.close();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
