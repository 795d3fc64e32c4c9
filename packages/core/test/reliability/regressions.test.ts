/**
 * Bugs the reliability and security suite found, one test each, named for the bug.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/index.js';
import {
  type Harness,
  leakedKeys,
  PERMANENT_KEY,
  rawStatus,
  sendRaw,
  startHarness,
} from '../proxy/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
beforeEach(() => {
  h.emulator.clearRequests();
});
afterAll(async () => {
  await h.close();
  expect(leakedKeys()).toEqual([]);
});

const CHAT = '/dashscope/compatible-mode/v1/chat/completions';

describe('regressions', () => {
  it('refuses encoded non-ASCII in a proxied path (full-width dots %ef%bc%8e), reaching nobody upstream', async () => {
    // Valid UTF-8 used to be forwarded; NFKC-normalising servers read U+FF0E as `.`.
    const answer = await sendRaw(
      h.url,
      'GET /dashscope/api/v1/%ef%bc%8e%ef%bc%8e/tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(rawStatus(answer)).toBe(400);
    expect(answer).toContain('InvalidPath');
    expect(h.emulator.requests).toEqual([]);
  });

  it('still forwards encoded non-ASCII in the query string', async () => {
    const answer = await sendRaw(
      h.url,
      'GET /dashscope/compatible-mode/v1/models?q=%e4%bd%a0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(rawStatus(answer)).toBe(200);
  });

  it('refuses an HTTP/0.9 request line (a raw LF in the target), reaching nobody upstream', async () => {
    // Node parses `GET /path\n` as HTTP/0.9 and still reads headers after it.
    const answer = await sendRaw(
      h.url,
      'GET /dashscope/compatible-mode/v1/models\nX-Injected: 1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(rawStatus(answer)).toBe(400);
    expect(answer).toContain('HTTP/0.9');
    expect(h.emulator.requests).toEqual([]);
  });

  it('refuses a minted "token" that echoes the permanent key, so the token route never hands it out', async () => {
    // An upstream that reflects the request (misrouted base URL, echoing gateway) used to have
    // its echo accepted as a temporary key and handed to the browser.
    for (const token of [
      PERMANENT_KEY,
      `st-${PERMANENT_KEY.slice(3)}`,
      `x${PERMANENT_KEY.slice(5, 14)}y`,
    ]) {
      h.emulator.fault('tokens', {
        type: 'status',
        status: 200,
        body: { token, expires_at: Math.floor(h.emulator.now()) + 60 },
      });
      const error = await mintToken({ apiKey: PERMANENT_KEY, baseUrl: h.emulator.url }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
      expect(String((error as Error).message)).toContain('a `token` that contains the');
    }
    h.emulator.fault('tokens', {
      type: 'status',
      status: 200,
      body: { token: PERMANENT_KEY, expires_at: Math.floor(h.emulator.now()) + 60 },
    });
    const answer = await sendRaw(
      h.url,
      'POST /dashscope/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    );
    expect(rawStatus(answer)).toBe(502);
    expect(answer).not.toContain(PERMANENT_KEY.slice(3, 11));
  });

  it('refuses a Transfer-Encoding whose final coding is not chunked before minting or sending anything', async () => {
    // Node hands such a request to the app before its parser fails on the body.
    const misses = h.handler.stats().proxyTokens.misses;
    for (const coding of ['xchunked', 'identity', 'gzip']) {
      const answer = await sendRaw(
        h.url,
        `POST ${CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n0\r\n\r\n`,
      );
      expect(rawStatus(answer), coding).toBe(400);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(h.emulator.requests).toEqual([]);
    expect(h.handler.stats().proxyTokens.misses).toBe(misses);
  });
});
