/**
 * Where the AccessKey comes from: explicit values, a provider object (the shape of
 * `@alicloud/credentials`' `Client`), or the environment.
 */
import { DashScopeError } from '@dashscope-token/core/neutral';

/** An AccessKey pair, or an STS triple when `securityToken` is set. */
export interface AlibabaCloudCredentials {
  /** AccessKey ID (e.g. `LTAI…`, or `STS.…` for STS). */
  accessKeyId: string;
  /** AccessKey secret. Never logged, never sent. */
  accessKeySecret: string;
  /** STS security token, sent as the signed `x-acs-security-token` header. */
  securityToken?: string;
}

/**
 * Anything that resolves credentials on demand, e.g. `new Credential()` from
 * `@alicloud/credentials` (ECS RAM role, RRSA/OIDC in ACK, STS, CLI profile…). Called before
 * every signed request, so rotating credentials are picked up.
 */
export interface CredentialProvider {
  getCredential(): Promise<{
    accessKeyId?: string;
    accessKeySecret?: string;
    securityToken?: string;
  }>;
}

/** What the `credentials` option accepts. */
export type CredentialsOption = AlibabaCloudCredentials | CredentialProvider;

/** Environment variables read when no `credentials` option is given. */
export const CREDENTIAL_ENV = Object.freeze({
  accessKeyId: 'ALIBABA_CLOUD_ACCESS_KEY_ID',
  accessKeySecret: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  securityToken: 'ALIBABA_CLOUD_SECURITY_TOKEN',
});

function missing(message: string): DashScopeError {
  return new DashScopeError({ code: 'MissingCredentials', status: 500, retryable: false, message });
}

function readEnv(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  const value = env?.[name];
  return value === undefined || value === '' ? undefined : value;
}

function isProvider(value: unknown): value is CredentialProvider {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { getCredential?: unknown }).getCredential === 'function'
  );
}

function checked(
  value: { accessKeyId?: unknown; accessKeySecret?: unknown; securityToken?: unknown },
  source: string,
): AlibabaCloudCredentials {
  const { accessKeyId, accessKeySecret, securityToken } = value;
  if (typeof accessKeyId !== 'string' || accessKeyId === '') {
    throw missing(`No AccessKey ID from ${source}.`);
  }
  if (typeof accessKeySecret !== 'string' || accessKeySecret === '') {
    throw missing(`No AccessKey secret from ${source}.`);
  }
  if (securityToken !== undefined && securityToken !== null && typeof securityToken !== 'string') {
    throw missing(`The security token from ${source} is not a string.`);
  }
  return securityToken
    ? { accessKeyId, accessKeySecret, securityToken }
    : { accessKeyId, accessKeySecret };
}

/**
 * Resolves the credentials to sign one request with: a provider's `getCredential()`, the
 * explicit values, or `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET` /
 * `ALIBABA_CLOUD_SECURITY_TOKEN` (read at call time).
 * @throws DashScopeError `MissingCredentials` (500)
 */
export async function resolveCredentials(
  option: CredentialsOption | undefined,
): Promise<AlibabaCloudCredentials> {
  if (option === undefined) {
    return checked(
      {
        accessKeyId: readEnv(CREDENTIAL_ENV.accessKeyId),
        accessKeySecret: readEnv(CREDENTIAL_ENV.accessKeySecret),
        securityToken: readEnv(CREDENTIAL_ENV.securityToken),
      },
      `the environment (${CREDENTIAL_ENV.accessKeyId}, ${CREDENTIAL_ENV.accessKeySecret})`,
    );
  }
  if (isProvider(option)) {
    let value: Awaited<ReturnType<CredentialProvider['getCredential']>>;
    try {
      value = await option.getCredential();
    } catch (error) {
      throw new DashScopeError({
        code: 'CredentialsUnavailable',
        status: 502,
        retryable: true,
        message: `The credentials provider failed: ${error instanceof Error ? error.name : 'error'}.`,
      });
    }
    if (typeof value !== 'object' || value === null) {
      throw missing('The credentials provider resolved to nothing.');
    }
    return checked(value, 'the credentials provider');
  }
  if (typeof option !== 'object' || option === null) {
    throw new DashScopeError({
      code: 'InvalidParameter',
      status: 400,
      retryable: false,
      message:
        'Invalid credentials: expected { accessKeyId, accessKeySecret, securityToken? } or an object with getCredential().',
    });
  }
  return checked(option, 'the credentials option');
}
