// The chat page: plain JavaScript, no framework, no build step.
// Two ways to reach Model Studio's OpenAI-compatible chat API, both streamed:
//   proxy:  POST /dashscope/compatible-mode/v1/chat/completions (the server injects a key)
//   direct: POST /dashscope/token for a temporary st- key, then call Model Studio with it.

const $ = (id) => document.getElementById(id);
const ui = {
  banner: $('banner'),
  keyPanel: $('key-panel'),
  keyValue: $('key-value'),
  keyLife: $('key-life'),
  keyProgress: $('key-progress'),
  keyNote: $('key-note'),
  transcript: $('transcript'),
  composer: $('composer'),
  message: $('message'),
  send: $('send'),
  simulate: $('simulate'),
  simulateStatus: $('simulate-status'),
  easServiceName: $('eas-service-name'),
  workbenchWhere: $('workbench-where'),
  operator: $('operator'),
  instance: $('instance'),
  openWorkbench: $('open-workbench'),
  workbenchStatus: $('workbench-status'),
  usageModels: $('usage-models'),
  usageRequests: $('usage-requests'),
  usageMints: $('usage-mints'),
};

let config; // { mode: 'emulator' | 'model-studio', directBaseUrl, model, refreshBeforeSeconds }
let busy = false;
const history = []; // the conversation sent with each call: [{ role, content }]

/** The temporary key of direct mode; `deadline` is in local milliseconds. */
const key = { token: '', deadline: 0, ttl: 0, pending: undefined, renewTimer: 0, tick: 0 };

/** A failure, with a message meant for people. */
class ChatError extends Error {
  constructor(message, { status = 0, code = '' } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- start-up -------------------------------------------------------------------------------

async function start() {
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    config = await res.json();
  } catch {
    ui.banner.textContent = 'Could not reach the server. Is the demo still running?';
    ui.banner.dataset.kind = 'error';
    return;
  }
  const host = new URL(config.directBaseUrl).host;
  if (config.mode === 'emulator') {
    ui.banner.textContent =
      `Offline: DASHSCOPE_API_KEY is not set, so the server uses its built-in Model Studio ` +
      `emulator (${host}). Replies are canned.`;
    ui.banner.dataset.kind = 'offline';
    ui.simulate.hidden = false;
  } else {
    ui.banner.textContent = `Online: Alibaba Cloud Model Studio (${host}), model ${config.model}.`;
    ui.banner.dataset.kind = 'online';
  }
  const eas = config.paiEas;
  ui.easServiceName.textContent = eas.service;
  ui.workbenchWhere.textContent = eas.emulated
    ? `(emulated EAS, service ${eas.service})`
    : `(service ${eas.service}, ${eas.region})`;
  ui.instance.value = eas.instance;
  ui.operator.checked = eas.operator;
  ui.send.disabled = false;
  refreshUsage();
  setInterval(refreshUsage, USAGE_POLL_MS);
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener('change', () => setMode(radio.value));
    if (radio.checked) setMode(radio.value);
  }
}

function currentMode() {
  return document.querySelector('input[name="mode"]:checked')?.value ?? 'proxy';
}

function setMode(mode) {
  const direct = mode === 'direct';
  ui.keyPanel.hidden = !direct;
  clearInterval(key.tick);
  clearTimeout(key.renewTimer);
  if (!direct) return;
  key.tick = setInterval(showKey, 500);
  showKey();
  if (key.token && secondsLeft() > config.refreshBeforeSeconds) scheduleRenewal(0);
  else renewKey().catch(() => {}); // a failure is shown in the key panel
}

// ---- the temporary key (direct mode) --------------------------------------------------------

function secondsLeft() {
  return (key.deadline - Date.now()) / 1000;
}

/** A key with more than `refreshBeforeSeconds` of life left, fetching one when needed. */
async function getKey() {
  if (key.token && secondsLeft() > config.refreshBeforeSeconds) return key.token;
  return renewKey();
}

function renewKey() {
  key.pending ??= fetchKey().finally(() => {
    key.pending = undefined;
  });
  return key.pending;
}

async function fetchKey() {
  try {
    const res = await call('/dashscope/token', { method: 'POST' }, 'server');
    if (!res.ok) throw await errorFromResponse(res);
    const { token, expires_at: expiresAt } = await res.json();
    // expires_at is on the server's clock; measure the life left against the server's Date
    // header so that a wrong clock on this computer does not matter.
    const serverNow = Date.parse(res.headers.get('Date') ?? '') / 1000;
    const life = expiresAt - (Number.isFinite(serverNow) ? serverNow : Date.now() / 1000);
    key.token = token;
    key.deadline = Date.now() + life * 1000;
    key.ttl = Math.max(1, Math.round(life));
    ui.keyNote.textContent = 'A new key is fetched before this one expires.';
    delete ui.keyNote.dataset.kind;
    showKey();
    scheduleRenewal(0);
    return token;
  } catch (error) {
    ui.keyNote.textContent = `Could not get a key: ${error.message}`;
    ui.keyNote.dataset.kind = 'error';
    scheduleRenewal(5);
    throw error;
  }
}

/** Fetches the next key `refreshBeforeSeconds` before this one expires (or after `retry` s). */
function scheduleRenewal(retry) {
  clearTimeout(key.renewTimer);
  if (currentMode() !== 'direct') return;
  const wait = retry || Math.max(1, secondsLeft() - config.refreshBeforeSeconds);
  key.renewTimer = setTimeout(() => renewKey().catch(() => {}), wait * 1000);
}

function showKey() {
  if (!key.token) return;
  const left = Math.max(0, Math.ceil(secondsLeft()));
  ui.keyValue.textContent = `${key.token.slice(0, 12)}…`;
  ui.keyLife.textContent = left > 0 ? `expires in ${left} s` : 'expired';
  ui.keyProgress.max = key.ttl;
  ui.keyProgress.value = Math.min(left, key.ttl);
}

// ---- chatting -------------------------------------------------------------------------------

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text || busy || !config) return;
  ui.message.value = '';
  send(text);
});

ui.message.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

async function send(text) {
  const mode = currentMode();
  ui.simulateStatus.textContent = '';
  history.push({ role: 'user', content: text });
  addBubble('user', 'You').text.textContent = text;
  const who =
    mode === 'pai-eas'
      ? `PAI-EAS ${config.paiEas.service}`
      : config.mode === 'emulator'
        ? 'Emulator'
        : 'Model Studio';
  const how = mode === 'direct' ? 'direct' : 'via proxy';
  const bubble = addBubble('assistant', `${who} · ${how}`);
  bubble.li.dataset.mode = mode;
  setBusy(true);
  let answer = '';
  const onText = (piece) => {
    answer += piece;
    bubble.text.append(piece); // one text node per piece: the answer grows as it streams in
    ui.transcript.scrollTop = ui.transcript.scrollHeight;
  };
  try {
    if (mode === 'direct') await chatDirect(onText, bubble);
    else if (mode === 'pai-eas') {
      const service = encodeURIComponent(config.paiEas.service);
      // An EAS service serves its own model, named after the service (vLLM's default).
      // `meterStreams` leaves PAI-EAS calls as they are (a service need not know OpenAI's
      // stream options), so the page asks for the usage chunk itself: the proxy meters it.
      await streamChat(
        `/dashscope/pai-eas/services/${service}/v1/chat/completions`,
        {},
        onText,
        'server',
        config.paiEas.service,
        { stream_options: { include_usage: true } },
      );
    } else await streamChat('/dashscope/compatible-mode/v1/chat/completions', {}, onText, 'server');
    history.push({ role: 'assistant', content: answer });
    bubble.li.dataset.status = 'done';
  } catch (error) {
    history.pop(); // the question went unanswered: leave it out of the conversation
    bubble.error.textContent =
      error instanceof ChatError ? error.message : 'Something went wrong; see the console.';
    if (!(error instanceof ChatError)) console.error(error);
    bubble.error.hidden = false;
    bubble.li.dataset.status = 'error';
    if (!ui.message.value) ui.message.value = text; // easy to send again
  } finally {
    setBusy(false);
    refreshUsage();
  }
}

async function chatDirect(onText, bubble) {
  const url = `${config.directBaseUrl}/compatible-mode/v1/chat/completions`;
  const token = await getKey();
  try {
    await streamChat(url, { Authorization: `Bearer ${token}` }, onText, 'model-studio');
  } catch (error) {
    // A refused key (expired early, clock skew): get a fresh one and try once more.
    if (!(error instanceof ChatError) || error.status !== 401 || error.started) throw error;
    bubble.note.textContent = `The key was refused (${error.code || 401}); retried with a new one.`;
    bubble.note.hidden = false;
    const fresh = await renewKey();
    await streamChat(url, { Authorization: `Bearer ${fresh}` }, onText, 'model-studio');
  }
}

/** POSTs a streamed chat completion and feeds each piece of text to `onText`. */
async function streamChat(url, headers, onText, target, model = config.model, options = {}) {
  const res = await call(
    url,
    {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...headers },
      body: JSON.stringify({ model, messages: history, stream: true, ...options }),
    },
    target,
  );
  if (!res.ok) throw await errorFromResponse(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let started = false;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      throw Object.assign(new ChatError('The answer was cut off: the connection was lost.'), {
        started,
      });
    }
    if (chunk.done) break;
    buffer += chunk.value;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('data:')) continue; // comments, event names, blank lines
      const data = line.slice(5).trim();
      if (data === '[DONE]') return;
      let event;
      try {
        event = JSON.parse(data);
      } catch {
        continue;
      }
      if (event.error) throw describe(0, event.error.code, event.error.message, 0);
      const piece = event.choices?.[0]?.delta?.content;
      if (piece) {
        started = true;
        onText(piece);
      }
    }
  }
  throw new ChatError('The answer was cut off before the end.');
}

/** fetch(), with a readable message when the other side cannot be reached at all. */
async function call(url, init, target) {
  try {
    return await fetch(url, init);
  } catch {
    if (target === 'server') throw new ChatError('Could not reach the server.');
    throw new ChatError(
      `Could not reach Model Studio at ${new URL(url).host} ` +
        '(offline, or it does not accept calls from this page).',
    );
  }
}

/** Reads both error shapes: {code, message} (native, token route) and {error: {code, message}}. */
async function errorFromResponse(res) {
  let code = '';
  let message = '';
  try {
    const body = await res.json();
    const detail = body && typeof body.error === 'object' && body.error ? body.error : body;
    code = String(detail.code ?? detail.type ?? '');
    message = String(detail.message ?? '');
  } catch {
    // not JSON: an HTML gateway page, say
  }
  return describe(res.status, code, message, retryAfter(res));
}

function retryAfter(res) {
  const value = res.headers.get('Retry-After');
  if (!value) return 0;
  const seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : 0;
}

/** The message people see for an error answer. */
function describe(status, code, message, retryAfterSeconds) {
  const tag = code || `HTTP ${status}`;
  const make = (text) => new ChatError(text, { status, code });
  const detail = message ? `: ${message.slice(0, 200)}` : '';
  if (status === 429 || /throttl|rate|limit_requests|quota/i.test(code)) {
    const when = retryAfterSeconds ? `in ${retryAfterSeconds} s` : 'in a moment';
    return make(`Model Studio is busy (${tag}); try again ${when}.`);
  }
  if (/^(InvalidApiKey|invalid_api_key)$/.test(code) && status !== 401) {
    return make(`Model Studio refused the server's API key (${tag}). Check its configuration.`);
  }
  if (status === 401) return make(`The key was refused (${tag}); it may have expired.`);
  if (status === 403) return make(`Not allowed (${tag})${detail}`);
  if (/^(MissingApiKey|missing_api_key)$/.test(code)) {
    return make(`The server has no Model Studio API key configured (${tag}).`);
  }
  if (status >= 500 || /network|timeout|system|internal/i.test(code)) {
    return make(`Model Studio is unavailable (${tag}); try again later.`);
  }
  if (status === 0) return make(`Model Studio stopped with an error (${tag})${detail}`);
  return make(`The request was refused (${tag})${detail}`);
}

// ---- the page -------------------------------------------------------------------------------

function addBubble(role, who) {
  const li = document.createElement('li');
  li.className = `msg ${role}`;
  const label = document.createElement('span');
  label.className = 'who';
  label.textContent = who;
  const text = document.createElement('p');
  text.className = 'text';
  const note = document.createElement('p');
  note.className = 'note';
  note.hidden = true;
  const error = document.createElement('p');
  error.className = 'error';
  error.hidden = true;
  li.append(label, text, note, error);
  if (role === 'assistant') li.dataset.status = 'streaming';
  ui.transcript.append(li);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
  return { li, text, note, error };
}

function setBusy(value) {
  busy = value;
  ui.send.disabled = value;
  ui.send.textContent = value ? 'Answering…' : 'Send';
  ui.transcript.setAttribute('aria-busy', String(value));
  if (!value) ui.message.focus();
}

// Offline only: make the emulator fail the next chat call.
// ---- usage panel ----------------------------------------------------------------------------

/** How often the panel asks the server for its usage (also after every answer). */
const USAGE_POLL_MS = 5000;

/** Fetches GET /usage (tokens by model, requests, mints since the server started) and shows it. */
async function refreshUsage() {
  let usage;
  try {
    const res = await fetch('/usage', { cache: 'no-store' });
    if (!res.ok) return;
    usage = await res.json();
  } catch {
    return; // the server is gone: the banner says so on the next call
  }
  ui.usageRequests.textContent = String(usage.requests);
  ui.usageMints.textContent = String(usage.mints);
  if (usage.models.length === 0) return;
  const rows = usage.models.map((m) => {
    const tr = document.createElement('tr');
    tr.dataset.model = m.model;
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = m.model;
    const requests = document.createElement('td');
    requests.textContent = String(m.requests);
    const tokens = document.createElement('td');
    tokens.className = 'tokens';
    tokens.textContent = String(m.totalTokens);
    tokens.title = `${m.inputTokens} in, ${m.outputTokens} out`;
    tr.append(name, requests, tokens);
    return tr;
  });
  ui.usageModels.tBodies[0].replaceChildren(...rows);
}

ui.simulate.addEventListener('click', async (event) => {
  const button = event.target instanceof HTMLButtonElement ? event.target : undefined;
  if (!button?.dataset.kind) return;
  const res = await fetch(`/simulate/${button.dataset.kind}`, { method: 'POST' }).catch(() => {});
  ui.simulateStatus.textContent = res?.ok
    ? `The emulator will fail the next chat call (${button.textContent}): send a message to see what happens.`
    : 'Could not reach the server.';
});

// ---- PAI-EAS Workbench ----------------------------------------------------------------------

// The demo's stand-in for signing in: a cookie the server's authorizeWorkbench checks. A real
// app signs its operators in and checks their session instead.
ui.operator.addEventListener('change', () => {
  // biome-ignore lint/suspicious/noDocumentCookie: one fixed cookie, and Chromium-only CookieStore is not needed here
  document.cookie = ui.operator.checked
    ? 'demo_operator=yes; Path=/; SameSite=Strict'
    : 'demo_operator=; Path=/; SameSite=Strict; Max-Age=0';
  ui.workbenchStatus.textContent = ui.operator.checked
    ? 'Signed in as operator (demo).'
    : 'Signed out: Workbench URLs are refused.';
  delete ui.workbenchStatus.dataset.kind;
});

ui.openWorkbench.addEventListener('click', async () => {
  // Opened now, in the click, so that no popup blocker stops it; it gets its URL once the server
  // handed one out. The URL is used once and never shown, stored or logged.
  const tab = window.open('about:blank', 'workbench');
  ui.workbenchStatus.textContent = 'Asking the server for a one-time login…';
  delete ui.workbenchStatus.dataset.kind;
  try {
    const res = await call(
      '/dashscope/pai-eas/workbench',
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          service: config.paiEas.service,
          instance: ui.instance.value.trim(),
        }),
      },
      'server',
    );
    if (!res.ok) throw await workbenchError(res);
    const { workbench_url: url } = await res.json();
    if (tab) {
      tab.opener = null;
      tab.location.replace(url);
    }
    ui.workbenchStatus.textContent = tab
      ? 'Opened a one-time Workbench login in a new tab (it works once).'
      : 'The browser blocked the new tab; allow pop-ups and try again.';
  } catch (error) {
    tab?.close();
    ui.workbenchStatus.textContent =
      error instanceof ChatError ? error.message : 'Something went wrong; see the console.';
    ui.workbenchStatus.dataset.kind = 'error';
    if (!(error instanceof ChatError)) console.error(error);
  }
});

async function workbenchError(res) {
  let code = '';
  let message = '';
  try {
    ({ code = '', message = '' } = await res.json());
  } catch {
    // not JSON
  }
  const tag = code || `HTTP ${res.status}`;
  if (res.status === 403) {
    return new ChatError(`Refused (${tag}): only operators get a Workbench login.`, {
      status: res.status,
      code,
    });
  }
  if (res.status === 400)
    return new ChatError(`Check the instance name (${tag}): ${message}`, { status: 400, code });
  if (res.status === 404) return new ChatError(`No such instance (${tag}).`, { status: 404, code });
  return new ChatError(`PAI-EAS could not open a Workbench login (${tag}).`, {
    status: res.status,
    code,
  });
}

start();
