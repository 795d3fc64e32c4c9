import { describe, expect, it } from 'vitest';
import { start } from './helpers.js';
import { DESCRIBE_PATH, SERVICE, signedCall } from './pai-eas-helpers.js';

async function workbenchUrl(emulator: Awaited<ReturnType<typeof start>>): Promise<string> {
  const { body } = await signedCall(emulator, {
    query: { ActionType: 'WorkBench', WorkerName: 'worker0' },
  });
  return body.WorkbenchUrl as string;
}

describe('emulated Workbench login', () => {
  it('logs in on the first visit and refuses the second', async () => {
    const emulator = await start();
    const url = await workbenchUrl(emulator);
    const first = await fetch(url);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await first.text()).toContain('emulator-llm-7b56869574-44nq9 / worker0');
    const second = await fetch(url);
    expect(second.status).toBe(403);
    expect(await second.text()).toContain('already been used');
  });

  it('refuses an expired or unknown login link', async () => {
    const emulator = await start({ paiEas: { workbenchUrlTtlSeconds: 60 } });
    const url = await workbenchUrl(emulator);
    emulator.setClockOffset(61);
    expect((await fetch(url)).status).toBe(403);
    expect((await fetch(`${emulator.url}/ecs-workbench/disposable/login?token=00`)).status).toBe(
      403,
    );
  });

  it('never logs the login token', async () => {
    const lines: string[] = [];
    const emulator = await start({ log: (line) => lines.push(line) });
    const url = await workbenchUrl(emulator);
    await fetch(url);
    const token = new URL(url).searchParams.get('token')!;
    await emulator.close();
    expect(lines.join('\n')).toContain('pai-eas-workbench');
    expect(lines.join('\n')).not.toContain(token);
  });
});

describe('emulated EAS service (OpenAI-compatible)', () => {
  async function describeService(emulator: Awaited<ReturnType<typeof start>>) {
    const { body } = await signedCall(emulator, { path: DESCRIBE_PATH });
    return { endpoint: body.InternetEndpoint as string, token: body.AccessToken as string };
  }

  it('answers chat completions with the service token', async () => {
    const emulator = await start();
    const { endpoint, token } = await describeService(emulator);
    const res = await fetch(`${endpoint}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'application/json' },
      body: JSON.stringify({ model: SERVICE, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      object: string;
      choices: { message: { content: string } }[];
    };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]!.message.content).toContain('hi');
  });

  it('serves one model, named after the service, and refuses any other name as vLLM does', async () => {
    const emulator = await start();
    const { endpoint, token } = await describeService(emulator);
    const ask = (model: string) =>
      fetch(`${endpoint}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: token, 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
      });
    const served = await ask(SERVICE);
    expect(((await served.json()) as { model: string }).model).toBe(SERVICE);
    const other = await ask('qwen-plus');
    expect(other.status).toBe(404);
    expect(JSON.stringify(await other.json())).toContain('The model `qwen-plus` does not exist.');
  });

  it('streams with a Bearer-prefixed token too', async () => {
    const emulator = await start();
    const { endpoint, token } = await describeService(emulator);
    const res = await fetch(`${endpoint}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: SERVICE,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(await res.text()).toContain('data: [DONE]');
  });

  it('answers 401 without the token or with another one', async () => {
    const emulator = await start();
    const { endpoint } = await describeService(emulator);
    expect((await fetch(`${endpoint}/v1/models`)).status).toBe(401);
    const wrong = await fetch(`${endpoint}/v1/models`, { headers: { authorization: 'eas-wrong' } });
    expect(wrong.status).toBe(401);
  });

  it('lists the served model and 404s unknown paths and services', async () => {
    const emulator = await start();
    const { endpoint, token } = await describeService(emulator);
    const models = await fetch(`${endpoint}/v1/models`, { headers: { authorization: token } });
    expect(((await models.json()) as { data: { id: string }[] }).data[0]!.id).toBe(SERVICE);
    expect((await fetch(`${endpoint}/v2/x`, { headers: { authorization: token } })).status).toBe(
      404,
    );
    expect((await fetch(`${emulator.url}/api/predict/other/v1/models`)).status).toBe(404);
  });

  it('refuses bodies over the gateway limit of 1 MB', async () => {
    const emulator = await start();
    const { endpoint, token } = await describeService(emulator);
    const res = await fetch(`${endpoint}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: SERVICE,
        messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }],
      }),
    });
    expect(res.status).toBe(413);
  });
});
