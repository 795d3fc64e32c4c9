import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATOR_ACCESS_KEY, DEFAULT_EMULATOR_STS_CREDENTIALS } from '../src/index.js';
import { start } from './helpers.js';
import {
  DESCRIBE_PATH,
  SERVICE,
  signedCall,
  signedHeaders,
  TOKEN_PATH,
} from './pai-eas-helpers.js';

describe('emulated PAI-EAS OpenAPI', () => {
  it('issues a Workbench URL for a request signed by the official signer', async () => {
    const emulator = await start();
    const { status, body, headers } = await signedCall(emulator);
    expect(status).toBe(200);
    expect(body.WorkbenchUrl).toMatch(
      new RegExp(`^${emulator.url}/ecs-workbench/disposable/login\\?token=[0-9a-f]{48}$`),
    );
    expect(body.RequestId).toBe(headers.get('x-acs-request-id'));
  });

  it('accepts the STS triple with its signed security token', async () => {
    const emulator = await start();
    const { status } = await signedCall(emulator, { key: DEFAULT_EMULATOR_STS_CREDENTIALS });
    expect(status).toBe(200);
  });

  it('describes a service: endpoint under the emulator and its token', async () => {
    const emulator = await start({ paiEas: { services: [{ name: SERVICE, token: 'svc-token' }] } });
    const { status, body } = await signedCall(emulator, { path: DESCRIBE_PATH });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      ServiceName: SERVICE,
      Status: 'Running',
      InternetEndpoint: `${emulator.url}/api/predict/${SERVICE}`,
      AccessToken: 'svc-token',
    });
  });

  const failures: [string, Parameters<typeof signedCall>[1], number, string][] = [
    [
      'an unknown AccessKey',
      { key: { accessKeyId: 'LTAI-nobody', accessKeySecret: 'x' } },
      404,
      'InvalidAccessKeyId.NotFound',
    ],
    ['a wrong secret', { secret: 'not-the-secret' }, 400, 'SignatureDoesNotMatch'],
    [
      'a wrong security token',
      { key: { ...DEFAULT_EMULATOR_STS_CREDENTIALS, securityToken: 'forged-token-value' } },
      400,
      'InvalidSecurityToken.MismatchWithAccessKey',
    ],
    [
      'an STS key without its token',
      { key: { ...DEFAULT_EMULATOR_STS_CREDENTIALS, securityToken: undefined } },
      404,
      'InvalidAccessKeyId.NotFound',
    ],
    [
      'a date 16 minutes old',
      { date: new Date(Date.now() - 16 * 60_000) },
      400,
      'InvalidTimeStamp.Expired',
    ],
    [
      'a date 16 minutes ahead',
      { date: new Date(Date.now() + 16 * 60_000) },
      400,
      'InvalidTimeStamp.Expired',
    ],
    [
      'a body that does not match x-acs-content-sha256',
      {
        tamper: (h) => {
          h['x-acs-content-sha256'] = '0'.repeat(64);
        },
      },
      400,
      'SignatureDoesNotMatch',
    ],
    [
      'an x-acs- header sent but not signed',
      {
        tamper: (h) => {
          h['x-acs-extra'] = '1';
        },
      },
      400,
      'IncompleteSignature',
    ],
    [
      'a required header left out of SignedHeaders',
      {
        tamper: (h) => {
          h.authorization = h.authorization!.replace('x-acs-signature-nonce;', '');
        },
      },
      400,
      'IncompleteSignature',
    ],
    [
      'no Authorization header',
      {
        tamper: (h) => {
          delete h.authorization;
        },
      },
      400,
      'IncompleteSignature',
    ],
    ['a mismatched x-acs-action', { action: 'DescribeService' }, 404, 'InvalidApi.NotFound'],
  ];

  for (const [what, call, status, code] of failures) {
    it(`answers ${status} ${code} for ${what}`, async () => {
      const emulator = await start();
      const answer = await signedCall(emulator, call);
      expect(answer.status).toBe(status);
      expect(answer.body.Code).toBe(code);
      expect(answer.body.RequestId).toEqual(expect.any(String));
    });
  }

  it('refuses a query changed after signing', async () => {
    const emulator = await start();
    const headers = signedHeaders(emulator, {
      query: { ActionType: 'WorkBench', WorkerName: 'worker0' },
    });
    const answer = await signedCall(
      emulator,
      { query: { ActionType: 'WorkBench', WorkerName: 'worker1' } },
      headers,
    );
    expect(answer.status).toBe(400);
    expect(answer.body.Code).toBe('SignatureDoesNotMatch');
  });

  it('refuses a replayed nonce with SignatureNonceUsed', async () => {
    const emulator = await start();
    const headers = signedHeaders(emulator);
    expect((await signedCall(emulator, {}, headers)).status).toBe(200);
    const replay = await signedCall(emulator, {}, headers);
    expect(replay.status).toBe(400);
    expect(replay.body.Code).toBe('SignatureNonceUsed');
  });

  it('verifies x-acs-date against its own clock (clock skew)', async () => {
    const emulator = await start({ clockOffsetSeconds: 20 * 60 });
    const answer = await signedCall(emulator);
    expect(answer.body.Code).toBe('InvalidTimeStamp.Expired');
    expect(Date.parse(answer.headers.get('date')!)).toBeGreaterThan(Date.now() + 19 * 60_000);
  });

  it('answers 403 Forbidden.RAM when the key is not allowed the operation', async () => {
    const emulator = await start({
      paiEas: { accessKeys: [{ ...DEFAULT_EMULATOR_ACCESS_KEY, allow: ['DescribeService'] }] },
    });
    expect((await signedCall(emulator, { path: DESCRIBE_PATH })).status).toBe(200);
    const denied = await signedCall(emulator);
    expect(denied.status).toBe(403);
    expect(denied.body.Code).toBe('Forbidden.RAM');
  });

  it('answers 404 for an unknown service, instance, worker or API', async () => {
    const emulator = await start();
    const cases: [string, Record<string, string>, string][] = [
      ['/api/v2/services/cn-shanghai/nope', {}, 'InvalidService.NotFound'],
      ['/api/v2/services/cn-beijing/' + SERVICE, {}, 'InvalidService.NotFound'],
      [
        `${DESCRIBE_PATH}/instances/other-0/token`,
        { ActionType: 'WorkBench' },
        'InvalidInstance.NotFound',
      ],
      [TOKEN_PATH, { ActionType: 'WorkBench', WorkerName: 'worker9' }, 'InvalidWorker.NotFound'],
      ['/api/v2/services/cn-shanghai/x/logs', {}, 'InvalidApi.NotFound'],
    ];
    for (const [path, query, code] of cases) {
      const answer = await signedCall(emulator, {
        path,
        query,
        action: path.endsWith('/token') ? 'CreateServiceInstanceToken' : 'DescribeService',
      });
      expect([answer.status, answer.body.Code]).toEqual([404, code]);
    }
  });

  it('answers throttling and internal-error faults in the gateway shape', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'throttle', retryAfterSeconds: 0.25 });
    emulator.fault('pai-eas', { type: 'system-error' });
    const throttled = await signedCall(emulator);
    expect([throttled.status, throttled.body.Code]).toEqual([400, 'Throttling.User']);
    expect(throttled.headers.get('x-acs-retry-after')).toBe('250');
    const failed = await signedCall(emulator);
    expect([failed.status, failed.body.Code]).toEqual([500, 'InternalError']);
    expect((await signedCall(emulator)).status).toBe(200);
  });

  it('records the calls under the pai-eas route', async () => {
    const emulator = await start();
    await signedCall(emulator);
    expect(emulator.requests.map((r) => r.route)).toEqual(['pai-eas']);
    expect(emulator.stats().requests['pai-eas']).toBe(1);
  });
});

describe('paiEas options', () => {
  it('refuses invalid AccessKeys, services and TTLs at start', async () => {
    await expect(
      start({ paiEas: { accessKeys: [{ accessKeyId: '', accessKeySecret: 'x' }] } }),
    ).rejects.toThrow(TypeError);
    await expect(start({ paiEas: { services: [{ name: 'Bad-Name' }] } })).rejects.toThrow(
      TypeError,
    );
    await expect(start({ paiEas: { region: 'nowhere' } })).rejects.toThrow(TypeError);
    await expect(start({ paiEas: { workbenchUrlTtlSeconds: 0 } })).rejects.toThrow(RangeError);
  });
});
