import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATOR_WORKSPACE } from '../src/index.js';
import { bearer, chatBody, generationBody, PATHS, postJson, start } from './helpers.js';

const BOUND = 'sk-bound-key-for-tests';

describe('workspaces', () => {
  it('accepts the default workspace and refuses an unknown X-DashScope-WorkSpace (401 InvalidApiKey)', async () => {
    const emulator = await start();
    const ok = await postJson(emulator, PATHS.chat, chatBody(), {
      ...bearer(),
      'X-DashScope-WorkSpace': DEFAULT_EMULATOR_WORKSPACE,
    });
    expect(ok.status).toBe(200);
    const native = await postJson(emulator, PATHS.generation, generationBody(), {
      ...bearer(),
      'X-DashScope-WorkSpace': 'llm-unknown',
    });
    expect(native.status).toBe(401);
    expect(await native.json()).toMatchObject({ code: 'InvalidApiKey' });
    const compat = await postJson(emulator, PATHS.chat, chatBody(), {
      ...bearer(),
      'X-DashScope-WorkSpace': 'llm-unknown',
    });
    expect(compat.status).toBe(401);
    expect(((await compat.json()) as { error: { code: string } }).error.code).toBe(
      'invalid_api_key',
    );
  });

  it('binds a key to its workspace; the temporary keys it mints inherit the binding', async () => {
    const emulator = await start({ workspaces: ['llm-a'] });
    emulator.addApiKey(BOUND, { workspace: 'llm-b' });
    const call = (key: string, workspace?: string) =>
      postJson(emulator, PATHS.chat, chatBody(), {
        ...bearer(key),
        ...(workspace ? { 'X-DashScope-WorkSpace': workspace } : {}),
      });
    expect((await call(BOUND)).status).toBe(200);
    expect((await call(BOUND, 'llm-b')).status).toBe(200);
    expect((await call(BOUND, 'llm-a')).status).toBe(401);
    // The unbound default key may use any known workspace.
    expect((await call(emulator.apiKeys[0] as string, 'llm-b')).status).toBe(200);

    const minted = await fetch(`${emulator.url}${PATHS.tokens}`, {
      method: 'POST',
      headers: bearer(BOUND),
    });
    const { token } = (await minted.json()) as { token: string };
    expect((await call(token, 'llm-b')).status).toBe(200);
    expect((await call(token, 'llm-a')).status).toBe(401);
  });
});
