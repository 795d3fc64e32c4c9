/**
 * The official signer (`@alicloud/openapi-core`, a dev dependency only) as an oracle: the same
 * random requests signed by both give the same Authorization header.
 */
import { createRequire } from 'node:module';
import { OpenApiUtil } from '@alicloud/openapi-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodePathSegment, signRequest } from '../src/index.js';

// Query names the official signer sends unencoded (it encodes only values); values are anything.
const queryName = fc.stringMatching(/^[A-Za-z0-9_.~-]{1,12}$/);
const anyText = fc.string({ unit: 'grapheme', maxLength: 24 });
const segment = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 16 })
  .filter((s) => !s.includes('/'));
// The path encoder of the generated SDKs, from the official stack's own runtime.
const sdkRequire = createRequire(createRequire(import.meta.url).resolve('@alicloud/openapi-core'));
const TeaURL = (
  sdkRequire('@darabonba/typescript') as { URL: { percentEncode(raw: string): string } }
).URL;

const headerValue = fc.stringMatching(/^[ -~]{0,20}$/);

describe('signRequest against the official signer', () => {
  it('gives the same Authorization for random requests, with and without STS', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        fc.array(segment, { maxLength: 5 }),
        fc.dictionary(queryName, anyText, { maxKeys: 5 }),
        fc.dictionary(fc.stringMatching(/^x-acs-[a-z]{1,8}$/), headerValue, { maxKeys: 3 }),
        fc.option(fc.string({ maxLength: 64 }), { nil: undefined }),
        fc.option(fc.stringMatching(/^[A-Za-z0-9+/=]{16,64}$/), { nil: undefined }),
        fc.boolean(),
        async (method, segments, query, extra, body, securityToken, withType) => {
          const credentials = {
            accessKeyId: 'LTAI-test-id',
            accessKeySecret: 'test-secret-0123456789',
            ...(securityToken ? { securityToken } : {}),
          };
          const headers: Record<string, string> = { ...extra };
          if (withType) headers['content-type'] = 'application/json; charset=utf-8';
          const signed = await signRequest(
            {
              method,
              host: 'pai-eas.cn-shanghai.aliyuncs.com',
              path: `/${segments.map(encodePathSegment).join('/')}`,
              query,
              action: 'DescribeService',
              version: '2021-07-01',
              headers,
              ...(body === undefined ? {} : { body }),
            },
            credentials,
          );
          const oracle = OpenApiUtil.getAuthorization(
            {
              method,
              pathname: `/${segments.map((s) => TeaURL.percentEncode(s)).join('/')}`,
              query,
              headers: signed.headers,
            } as never,
            'ACS3-HMAC-SHA256',
            signed.headers['x-acs-content-sha256']!,
            credentials.accessKeyId,
            credentials.accessKeySecret,
          );
          expect(signed.headers.authorization).toBe(oracle);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encodes path segments as the official SDK does for names EAS allows', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,30}$/), (name) => {
        expect(encodePathSegment(name)).toBe(TeaURL.percentEncode(name));
      }),
    );
  });
});
