/**
 * Attacks on the proxy's request target and headers, one named entry each. Every entry is sent
 * as raw bytes (an HTTP client would normalise most of them), must be refused with 400 (or 404
 * / 403 where noted), and must reach nobody upstream: not even a mint.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, leakedKeys, rawStatus, sendRaw, startHarness } from './harness.js';

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

const GEN = '/dashscope/api/v1/services/aigc/text-generation/generation';

function get(target: string, extraHeaders = ''): string {
  return `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extraHeaders}Connection: close\r\n\r\n`;
}

interface Attack {
  name: string;
  raw: string;
  /** Accepted statuses (the handler's 400, or Node's own 400 for unparseable requests). */
  status?: number[];
}

const attacks: Attack[] = [
  { name: 'dot-dot segments', raw: get('/dashscope/api/v1/../../etc/passwd') },
  { name: 'dot-dot escaping the API root', raw: get('/dashscope/api/v1/services/../../v2/x') },
  { name: 'single dot segment', raw: get('/dashscope/api/v1/./services/aigc') },
  { name: 'encoded dot-dot %2e%2e', raw: get('/dashscope/api/v1/%2e%2e/tokens') },
  { name: 'encoded dot-dot %2E%2E (upper case)', raw: get('/dashscope/api/v1/%2E%2E/tokens') },
  { name: 'half-encoded dot-dot .%2e', raw: get('/dashscope/api/v1/.%2e/tokens') },
  { name: 'double-encoded dot-dot %252e%252e', raw: get('/dashscope/api/v1/%252e%252e/tokens') },
  { name: 'overlong UTF-8 dot %c0%ae', raw: get('/dashscope/api/v1/%c0%ae%c0%ae/tokens') },
  { name: 'encoded slash %2f', raw: get('/dashscope/api/v1/services%2f..%2ftokens') },
  { name: 'encoded slash %2F (upper case)', raw: get('/dashscope/api/v1/services%2Faigc') },
  { name: 'encoded backslash %5c', raw: get('/dashscope/api/v1/services%5c..%5ctokens') },
  { name: 'raw backslash', raw: get('/dashscope/api/v1/services\\..\\tokens') },
  { name: 'double slash after the prefix', raw: get('/dashscope//api/v1/services/aigc') },
  { name: 'double slash inside the API path', raw: get('/dashscope/api/v1//services/aigc') },
  { name: 'trailing double slash', raw: get('/dashscope/api/v1/services//') },
  { name: 'semicolon path parameter ..;', raw: get('/dashscope/api/v1/..;/tokens') },
  { name: 'encoded semicolon %3b', raw: get('/dashscope/api/v1/services%3b/aigc') },
  {
    name: 'absolute-form target to another host',
    raw: get(`http://evil.example${GEN}`),
  },
  {
    name: 'absolute-form target to the right path',
    raw: get(`http://127.0.0.1:1/dashscope/compatible-mode/v1/models`),
  },
  {
    name: 'encoded CR LF in the path',
    raw: get('/dashscope/api/v1/services%0d%0aX-Injected:%20yes'),
  },
  { name: 'encoded LF in the path', raw: get('/dashscope/api/v1/services%0Aaigc') },
  { name: 'encoded NUL in the path', raw: get('/dashscope/api/v1/services%00/aigc') },
  { name: 'encoded CR LF in the query', raw: get(`${GEN}?x=%0d%0aHost:%20evil.example`) },
  { name: 'encoded NUL in the query', raw: get(`${GEN}?model=%00`) },
  { name: 'malformed percent-encoding %zz', raw: get('/dashscope/api/v1/services%zz') },
  { name: 'truncated percent-encoding %4', raw: get('/dashscope/api/v1/services%4') },
  { name: 'lone percent sign', raw: get('/dashscope/api/v1/services%') },
  { name: 'malformed percent-encoding in the query', raw: get(`${GEN}?x=%g1`) },
  { name: 'encoded control character %09', raw: get('/dashscope/api/v1/services%09') },
  {
    name: 'minting through the proxy (Model Studio token endpoint)',
    raw: 'POST /dashscope/api/v1/tokens?expire_in_seconds=1800 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    status: [403],
  },
  {
    name: 'minting through the proxy with a different case',
    raw: get('/dashscope/api/v1/TOKENS'),
    status: [403],
  },
  {
    name: 'request smuggling: Content-Length with Transfer-Encoding',
    raw: `POST ${GEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
  },
  {
    name: 'request smuggling: duplicate Content-Length',
    raw: `POST ${GEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{}`,
  },
  {
    name: 'header injection with a bare LF',
    raw: `GET ${GEN} HTTP/1.1\r\nHost: x\r\nX-A: 1\nX-B: 2\r\nConnection: close\r\n\r\n`,
  },
  {
    name: 'path outside the prefix that climbs into it',
    raw: get('/other/../dashscope/api/v1/services/aigc'),
    status: [404],
  },
];

describe('attack corpus', () => {
  it.each(attacks)('refuses $name and reaches nobody upstream', async ({ raw, status }) => {
    const answer = await sendRaw(h.url, raw);
    expect(status ?? [400]).toContain(rawStatus(answer));
    expect(h.emulator.requests).toEqual([]);
  });

  it('forwards to the configured origin whatever Host the client names', async () => {
    const answer = await sendRaw(
      h.url,
      get('/dashscope/compatible-mode/v1/models', 'X-Forwarded-Host: evil.example\r\n').replace(
        'Host: 127.0.0.1',
        'Host: evil.example',
      ),
    );
    expect(rawStatus(answer)).toBe(200);
    const upstream = h.emulator.requests.find((r) => r.route === 'models');
    expect(upstream?.headers.host).toBe(new URL(h.emulator.url).host);
    expect(upstream?.headers).not.toHaveProperty('x-forwarded-host');
  });
});
