import { DEFAULT_EMULATOR_STS_CREDENTIALS } from '@dashscope-token/emulator';
import { describe, expect, it } from 'vitest';
import { createServiceInstanceToken, describeService } from '../src/index.js';
import { INSTANCE, on, openApiCalls, SERVICE, start } from './fixture.js';

const STS = DEFAULT_EMULATOR_STS_CREDENTIALS as Required<typeof DEFAULT_EMULATOR_STS_CREDENTIALS>;

function everything(error: unknown): string {
  const e = error as Error & { cause?: unknown };
  return [String(e), e.message, e.stack, JSON.stringify(e), JSON.stringify(e.cause ?? null)].join(
    '\n',
  );
}

describe('no secret leaves the client', () => {
  it('redacts secret, security token and signature even when the gateway echoes them', async () => {
    const emulator = await start();
    const lines: string[] = [];
    let signature = '';
    const echoing: typeof fetch = async (_input, init) => {
      const headers = new Headers(init?.headers);
      signature = /Signature=([0-9a-f]+)/.exec(headers.get('authorization') ?? '')![1]!;
      const message = `bad: ${headers.get('authorization')} token=${headers.get('x-acs-security-token')} secret=${STS.accessKeySecret}`;
      return new Response(
        JSON.stringify({ RequestId: 'R-echo', Code: 'SignatureDoesNotMatch', Message: message }),
        {
          status: 400,
          headers: { 'content-type': 'application/json' },
        },
      );
    };
    const error = await createServiceInstanceToken({
      ...on(emulator),
      credentials: STS,
      fetch: echoing,
      log: (line) => lines.push(line),
      service: SERVICE,
      instance: INSTANCE,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SignatureDoesNotMatch', requestId: 'R-echo' });
    const text = `${everything(error)}\n${lines.join('\n')}`;
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    for (const secret of [STS.accessKeySecret, STS.securityToken, signature]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(secret.slice(4, 16));
    }
  });

  it('logs one line per attempt, without headers, signatures, tokens or the Workbench URL', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'throttle' });
    const lines: string[] = [];
    const { workbenchUrl } = await createServiceInstanceToken({
      ...on(emulator),
      credentials: STS,
      log: (line) => lines.push(line),
      service: SERVICE,
      instance: INSTANCE,
    });
    const service = await describeService({
      ...on(emulator),
      log: (l) => lines.push(l),
      service: SERVICE,
    });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^pai-eas CreateServiceInstanceToken 400 Throttling\.User request_id=\S+ attempt=1$/,
    );
    expect(lines[1]).toMatch(/^pai-eas CreateServiceInstanceToken 200 request_id=\S+ attempt=2$/);
    const text = lines.join('\n');
    const signatures = openApiCalls(emulator).map(
      (r) => /Signature=([0-9a-f]+)/.exec(String(r.headers.authorization))![1]!,
    );
    for (const secret of [
      STS.accessKeySecret,
      STS.securityToken,
      workbenchUrl,
      new URL(workbenchUrl).searchParams.get('token')!,
      service.accessToken!,
      ...signatures,
    ]) {
      expect(text).not.toContain(secret);
    }
  });

  it('keeps the secret out of errors about the credentials provider', async () => {
    const emulator = await start();
    const error = await createServiceInstanceToken({
      ...on(emulator),
      credentials: {
        async getCredential() {
          throw new Error(`metadata server said no for secret ${STS.accessKeySecret}`);
        },
      },
      retry: false,
      service: SERVICE,
      instance: INSTANCE,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CredentialsUnavailable', status: 502, retryable: true });
    expect(everything(error)).not.toContain(STS.accessKeySecret);
  });

  it('trusts only identifier-shaped codes and request ids, and keeps log lines on one line', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', {
      type: 'status',
      status: 400,
      body: { RequestId: 'R\nforged line', Code: 'Bad\nCode value', Message: 'x' },
    });
    const lines: string[] = [];
    const error = await createServiceInstanceToken({
      ...on(emulator),
      retry: false,
      log: (line) => lines.push(line),
      service: SERVICE,
      instance: INSTANCE,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BadGateway', status: 502, upstreamStatus: 400 });
    expect((error as { requestId?: string }).requestId).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\n\r]/);
  });
});
