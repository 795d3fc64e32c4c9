import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalRequest, formatAcsDate, signRequest } from '../src/index.js';

const KEYS = { accessKeyId: 'YourAccessKeyId', accessKeySecret: 'YourAccessKeySecret' };
const DATE = new Date('2023-10-26T10:22:32Z');
const NONCE = '3156853299f313e23d1673dc12e1703d';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const OFFICIAL_CANONICAL = [
  'POST',
  '/',
  'ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai',
  'host:ecs.cn-shanghai.aliyuncs.com',
  'x-acs-action:RunInstances',
  `x-acs-content-sha256:${EMPTY_SHA256}`,
  'x-acs-date:2023-10-26T10:22:32Z',
  `x-acs-signature-nonce:${NONCE}`,
  'x-acs-version:2014-05-26',
  '',
  'host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
  EMPTY_SHA256,
].join('\n');

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('signRequest (ACS3-HMAC-SHA256)', () => {
  it('reproduces the official documentation vector byte for byte', async () => {
    const signed = await signRequest(
      {
        method: 'POST',
        host: 'ecs.cn-shanghai.aliyuncs.com',
        path: '/',
        query: {
          RegionId: 'cn-shanghai',
          ImageId: 'win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd',
        },
        action: 'RunInstances',
        version: '2014-05-26',
      },
      KEYS,
      { date: DATE, nonce: NONCE },
    );
    const canonical = canonicalRequest({
      method: 'POST',
      path: '/',
      query: signed.pathAndQuery.split('?')[1] ?? '',
      headers: signed.headers,
      payloadHash: signed.headers['x-acs-content-sha256']!,
    });
    expect(canonical).toBe(OFFICIAL_CANONICAL);
    expect(sha256(canonical)).toBe(
      '7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259',
    );
    expect(signed.headers.authorization).toBe(
      'ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0',
    );
  });

  it('reproduces the EAS CreateServiceInstanceToken vector', async () => {
    const signed = await signRequest(
      {
        method: 'GET',
        host: 'pai-eas.cn-shanghai.aliyuncs.com',
        path: '/api/v2/services/cn-shanghai/my_svc/instances/my-svc-7b56869574-44nq9/token',
        query: { WorkerName: 'worker0', ActionType: 'WorkBench' },
        action: 'CreateServiceInstanceToken',
        version: '2021-07-01',
      },
      KEYS,
      { date: DATE, nonce: NONCE },
    );
    expect(signed.pathAndQuery).toBe(
      '/api/v2/services/cn-shanghai/my_svc/instances/my-svc-7b56869574-44nq9/token?ActionType=WorkBench&WorkerName=worker0',
    );
    const canonical = canonicalRequest({
      method: 'GET',
      path: '/api/v2/services/cn-shanghai/my_svc/instances/my-svc-7b56869574-44nq9/token',
      query: 'ActionType=WorkBench&WorkerName=worker0',
      headers: signed.headers,
      payloadHash: EMPTY_SHA256,
    });
    expect(sha256(canonical)).toBe(
      '4556944dc5998e47bcd47b47dd294ac8cc0be1d39c9caba5ad7d65e0ff4fefa3',
    );
    expect(signed.headers.authorization).toMatch(
      /,Signature=a9e2e1e0791f9cdd5a440b6730cf6a7a00ae9e1251c883dc84e6c8423db1698a$/,
    );
  });

  it('signs the STS security token as x-acs-security-token', async () => {
    const signed = await signRequest(
      { method: 'GET', host: 'h', path: '/', action: 'A', version: 'v' },
      { ...KEYS, securityToken: 'sts-token-value' },
      { date: DATE, nonce: NONCE },
    );
    expect(signed.headers['x-acs-security-token']).toBe('sts-token-value');
    expect(signed.signedHeaders).toContain('x-acs-security-token');
    const plain = await signRequest(
      { method: 'GET', host: 'h', path: '/', action: 'A', version: 'v' },
      KEYS,
      { date: DATE, nonce: NONCE },
    );
    expect(plain.headers['x-acs-security-token']).toBeUndefined();
    expect(plain.headers.authorization).not.toBe(signed.headers.authorization);
  });

  it('uses a fresh date and nonce for every request', async () => {
    const request = { method: 'GET', host: 'h', path: '/', action: 'A', version: 'v' };
    const a = await signRequest(request, KEYS);
    const b = await signRequest(request, KEYS);
    expect(a.headers['x-acs-signature-nonce']).toMatch(/^[0-9a-f]{32}$/);
    expect(a.headers['x-acs-signature-nonce']).not.toBe(b.headers['x-acs-signature-nonce']);
    expect(a.headers['x-acs-date']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('hashes the body and signs content-type but not accept or user-agent', async () => {
    const signed = await signRequest(
      {
        method: 'POST',
        host: 'h',
        path: '/x',
        action: 'A',
        version: 'v',
        body: '{"a":1}',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'User-Agent': 'u',
        },
      },
      KEYS,
    );
    expect(signed.headers['x-acs-content-sha256']).toBe(sha256('{"a":1}'));
    expect(signed.signedHeaders).toBe(
      'content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
    );
  });

  it('formats x-acs-date without milliseconds', () => {
    expect(formatAcsDate(new Date('2024-01-02T03:04:05.678Z'))).toBe('2024-01-02T03:04:05Z');
  });
});
